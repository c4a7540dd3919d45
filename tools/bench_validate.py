#!/usr/bin/env python3
"""Token validation benchmark (issue 2): ratios measured in one run, on this machine.

Compares, for RS512/RSA-2048 and ES256/P-256: the raw `cryptography` verify of the
same signature (the floor); our TokenValidator on a first-seen token (full IS-10
checks: parse, issuer, key, signature, claims, audience, path) and on a cached
token; PyJWT `jwt.decode` with the equivalent checks; the pure backend against
a bare pow()+hash. Then the cold start of a `nmosauth-lite verify` process
against a process that only imports cryptography and verifies one signature.
Not a test: it prints numbers, it never fails on them.
"""

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402

from minting import Minter  # noqa: E402
from nmosauth_lite import TokenValidator, b64url  # noqa: E402

PATH = "/x-nmos/node/v1.3/self"
AUD = "node1.example.com"


def timeit(fn, n):
    """Per-call times in µs (timer overhead subtracted), median and p99."""
    t = time.perf_counter_ns
    over = []
    for _ in range(1000):
        a = t()
        over.append(t() - a)
    o = statistics.median(over)
    samples = []
    gc.disable()
    try:
        for _ in range(n):
            a = t()
            fn()
            samples.append(t() - a - o)
    finally:
        gc.enable()
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


def bench_alg(m, alg, n):
    import jwt as pyjwt

    priv, kid = m.key_by_alg[alg]
    tok = m.token(alg, aud=[AUD])
    head, payload, sig = tok.split(".")
    si = (head + "." + payload).encode()
    raw_sig = b64url.decode(sig)
    pub = priv.public_key()
    if alg.startswith("RS"):
        pad, h = padding.PKCS1v15(), hashes.SHA512()

        def floor():
            pub.verify(raw_sig, si, pad, h)
    else:
        half = len(raw_sig) // 2
        der = encode_dss_signature(int.from_bytes(raw_sig[:half], "big"), int.from_bytes(raw_sig[half:], "big"))
        algo = ec.ECDSA(hashes.SHA256())

        def floor():
            pub.verify(der, si, algo)

    jwks = {"keys": [k for k in m.jwks["keys"] if k["kid"] == kid]}
    v = TokenValidator(jwks=jwks, audience=[AUD], issuers=[m.ISS], backend="cryptography")
    now = m.NOW
    assert v.check(tok, "GET", PATH, now).status == 200

    def first_seen():
        v.forget()
        v.check(tok, "GET", PATH, now)

    def cached():
        v.check(tok, "GET", PATH, now)

    pj_key = pyjwt.PyJWK(jwks["keys"][0], algorithm=alg).key
    opts = {"require": ["exp", "iss", "sub", "aud"]}

    def pyjwt_decode():
        c = pyjwt.decode(tok, pj_key, algorithms=[alg], audience=AUD, issuer=m.ISS, options=opts,
                         leeway=0)
        # the equivalent of our path check: the x-nmos-node claim grants read of `self`
        if "*" not in c["x-nmos-node"]["read"]:
            raise ValueError

    # PyJWT checks exp against the real clock: mint a token valid now for it.
    real_now = int(time.time())
    pj_tok = m.token(alg, aud=[AUD], iat=real_now - 10, exp=real_now + 3600)
    tok_for_pyjwt = pj_tok

    def pyjwt_decode_now():
        c = pyjwt.decode(tok_for_pyjwt, pj_key, algorithms=[alg], audience=AUD, issuer=m.ISS, options=opts)
        if "*" not in c["x-nmos-node"]["read"]:
            raise ValueError

    pyjwt_decode_now()
    rows = {
        "floor": timeit(floor, n),
        "first": timeit(first_seen, n),
        "cached": timeit(cached, n * 5),
        "pyjwt": timeit(pyjwt_decode_now, n),
    }
    if alg.startswith("RS"):
        import hashlib

        from nmosauth_lite.crypto import get_backend

        pure = get_backend("pure")
        key = v.keys.keys[0]
        s_int = int.from_bytes(raw_sig, "big")

        def bare_pow():
            pow(s_int, key.e, key.n).to_bytes(key.size, "big")
            hashlib.sha512(si).digest()

        def pure_verify():
            pure.verify(alg, key, si, raw_sig)

        assert pure_verify() is None and pure.verify(alg, key, si, raw_sig)
        rows["bare_pow"] = timeit(bare_pow, n // 4)
        rows["pure"] = timeit(pure_verify, n // 4)
        vp = TokenValidator(jwks=jwks, audience=[AUD], issuers=[m.ISS], backend="pure")

        def pure_first():
            vp.forget()
            vp.check(tok, "GET", PATH, now)

        rows["pure_first"] = timeit(pure_first, n // 4)
    return rows


def run_child(cmd, stdin_data=None, env=None):
    """Wall time (ms) and peak RSS (MiB) of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    p.stdin.write(stdin_data or b"")
    p.stdin.close()
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - t0) * 1000
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_maxrss / 1024, p.returncode


BASELINE_CHILD = r"""
import sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
import base64, json
jwks = json.load(open(sys.argv[1]))
tok = sys.stdin.read().strip()
k = jwks["keys"][0]
def d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
pub = rsa.RSAPublicNumbers(int.from_bytes(d(k["e"]), "big"), int.from_bytes(d(k["n"]), "big")).public_key()
h, p, s = tok.split(".")
pub.verify(d(s), (h + "." + p).encode(), padding.PKCS1v15(), hashes.SHA512())
"""


def bench_cold(m, rounds):
    """Both processes as on a device: byte-compiled modules (pip compiles at install time;
    this sandbox sets PYTHONDONTWRITEBYTECODE) and no site hook (`-S`; the editable
    install's .pth finder would otherwise tax every import of ours), same PYTHONPATH."""
    import compileall
    import cryptography

    compileall.compile_dir(os.path.join(ROOT, "nmosauth_lite"), quiet=1)
    site_packages = os.path.dirname(os.path.dirname(cryptography.__file__))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + site_packages)
    with tempfile.TemporaryDirectory() as tmp:
        jf = os.path.join(tmp, "jwks.json")
        with open(jf, "w") as f:
            json.dump({"keys": [m.jwks["keys"][0]]}, f)
        bf = os.path.join(tmp, "baseline.py")
        with open(bf, "w") as f:
            f.write(BASELINE_CHILD)
        tok = m.token("RS512", aud=[AUD]).encode()
        ours_cmd = [sys.executable, "-S", "-m", "nmosauth_lite", "verify", "--jwks", jf, "--audience", AUD,
                    "--backend", "cryptography", "--now", str(m.NOW), "--path", PATH, "--token", "-"]
        base_cmd = [sys.executable, "-S", bf, jf]
        ours, base = [], []
        for _ in range(2):  # warm the page cache
            run_child(ours_cmd, tok, env)
            run_child(base_cmd, tok, env)
        for _ in range(rounds):  # interleaved so drift hits both
            w, r, rc = run_child(ours_cmd, tok, env)
            assert rc == 0, "nmosauth-lite verify failed"
            ours.append((w, r))
            w, r, rc = run_child(base_cmd, tok, env)
            assert rc == 0, "baseline failed"
            base.append((w, r))
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    return {"ours_ms": med(ours, 0), "base_ms": med(base, 0), "ours_rss": med(ours, 1), "base_rss": med(base, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=4000, help="iterations per measurement")
    ap.add_argument("--cold-rounds", type=int, default=15)
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()
    m = Minter()
    res = {"RS512": bench_alg(m, "RS512", args.n), "ES256": bench_alg(m, "ES256", args.n)}
    cold = bench_cold(m, args.cold_rounds)
    lines = ["| measurement | RS512 / RSA-2048 | ES256 / P-256 |", "|---|---|---|"]

    def cell(alg, k):
        r = res[alg].get(k)
        return "-" if r is None else "%.1f µs (p99 %.1f)" % r

    def ratio(alg, a, b):
        ra, rb = res[alg].get(a), res[alg].get(b)
        return "-" if ra is None or rb is None else "%.2fx" % (ra[0] / rb[0])

    lines.append("| raw `cryptography` verify (floor) | %s | %s |" % (cell("RS512", "floor"), cell("ES256", "floor")))
    lines.append("| ours, first-seen token, full IS-10 checks | %s | %s |" % (cell("RS512", "first"), cell("ES256", "first")))
    lines.append("| ours, cached token | %s | %s |" % (cell("RS512", "cached"), cell("ES256", "cached")))
    lines.append("| PyJWT `decode`, same checks | %s | %s |" % (cell("RS512", "pyjwt"), cell("ES256", "pyjwt")))
    lines.append("| **first-seen / floor** (target <= 1.5x) | %s | %s |" % (ratio("RS512", "first", "floor"), ratio("ES256", "first", "floor")))
    lines.append("| **PyJWT / ours first-seen** (target >= 2.5x) | %s | %s |" % (ratio("RS512", "pyjwt", "first"), ratio("ES256", "pyjwt", "first")))
    lines.append("| pure backend verify | %s | - |" % cell("RS512", "pure"))
    lines.append("| bare `pow()` + sha512 | %s | - |" % cell("RS512", "bare_pow"))
    lines.append("| **pure / bare pow** (target <= 1.3x) | %s | - |" % ratio("RS512", "pure", "bare_pow"))
    lines.append("| pure backend, first-seen token, full checks | %s | - |" % cell("RS512", "pure_first"))
    lines.append("")
    lines.append("| cold start, one RS512 token | wall ms | peak RSS MiB |")
    lines.append("|---|---|---|")
    lines.append("| `nmosauth-lite verify` process | %.1f | %.1f |" % (cold["ours_ms"], cold["ours_rss"]))
    lines.append("| python + import cryptography + one verify | %.1f | %.1f |" % (cold["base_ms"], cold["base_rss"]))
    lines.append("| **ratio** (target <= 1.15x) | %.2fx | %.2fx |" % (cold["ours_ms"] / cold["base_ms"], cold["ours_rss"] / cold["base_rss"]))
    print("\n".join(lines))
    if args.json:
        print(json.dumps({"validate": res, "cold": cold}, indent=1))


if __name__ == "__main__":
    main()
