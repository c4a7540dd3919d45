#!/usr/bin/env python3
"""Token validation benchmark (issues 2 and 13): ratios measured in one run, on this machine.

Compares, for RS512/RSA-2048, ES256/P-256, ES512/P-521 and RS256/RSA-2048: the raw
`cryptography` verify of the same signature (the floor); our TokenValidator on a first-seen
token (full IS-10 checks: parse, issuer, key, signature, claims, audience, path) and on a
cached token; PyJWT `jwt.decode` with the equivalent checks; oxyjwt (a Rust-backed PyJWT-style
library, the fastest a user could pick: signature, exp, iss, aud; no IS-10 path rules; installed
by `make bench`, "-" when missing or when it lacks the algorithm); the pure backend against a
bare pow()+hash (RS512). Every
function is measured in short chunks, interleaved round after round, so background load
hits all of them alike: each figure is the median (and p99) of all its samples, each ratio
the median of the per-round ratios. Then a per-stage breakdown (µs per stage) of the
first-seen path, and the cold start of a `nmosauth-lite verify` process against a process
that only imports cryptography and verifies one signature.
Not a test: it prints numbers, it never fails on them. `--quick` finishes in well under a minute.
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
ALGS = ("RS512", "ES256", "ES512", "RS256")  # RS512: IS-10; ES512: the IPMX device profile
HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def _overhead_ns():
    t = time.perf_counter_ns
    over = []
    for _ in range(1000):
        a = t()
        over.append(t() - a)
    return statistics.median(over)


def measure(fns, n, rounds):
    """Interleaved timing of several functions: `rounds` rounds, each running every function
    n // rounds times in turn. Returns {name: (median µs, p99 µs, [per-round medians])}."""
    t = time.perf_counter_ns
    o = _overhead_ns()
    chunk = max(10, n // rounds)
    samples = dict((k, []) for k in fns)
    per_round = dict((k, []) for k in fns)
    for _ in range(rounds):
        for name, fn in fns.items():
            got = []
            gc.disable()
            try:
                for _ in range(chunk):
                    a = t()
                    fn()
                    got.append(t() - a - o)
            finally:
                gc.enable()
            got.sort()
            per_round[name].append(got[len(got) // 2] / 1000)
            samples[name].extend(got)
    out = {}
    for name, xs in samples.items():
        xs.sort()
        out[name] = (xs[len(xs) // 2] / 1000, xs[int(len(xs) * 0.99)] / 1000, per_round[name])
    return out


def ratio(res, a, b):
    """Median of the per-round ratios a/b (resists drifting background load)."""
    return statistics.median(x / y for x, y in zip(res[a][2], res[b][2]))


def bench_alg(m, alg, n, rounds):
    import jwt as pyjwt

    priv, kid = m.key_by_alg[alg]
    tok = m.token(alg, aud=[AUD])
    head, payload, sig = tok.split(".")
    si = (head + "." + payload).encode()
    raw_sig = b64url.decode(sig)
    pub = priv.public_key()
    if alg.startswith("RS"):
        pad, h = padding.PKCS1v15(), HASHES[alg[2:]]()

        def floor():
            pub.verify(raw_sig, si, pad, h)
    else:
        half = len(raw_sig) // 2
        der = encode_dss_signature(int.from_bytes(raw_sig[:half], "big"), int.from_bytes(raw_sig[half:], "big"))
        algo = ec.ECDSA(HASHES[alg[2:]]())

        def floor():
            pub.verify(der, si, algo)

    jwks = {"keys": [k for k in m.jwks["keys"] if k["kid"] == kid]}
    v = TokenValidator(jwks=jwks, audience=[AUD], issuers=[m.ISS], backend="cryptography")
    now = m.NOW
    assert v.check(tok, "GET", PATH, now).status == 200

    def first_seen():
        # forget() drops the token cache only: what repeats across tokens (header segment,
        # compiled claims, audience result, classified path) stays, as on a Node.
        v.forget()
        v.check(tok, "GET", PATH, now)

    def cached():
        v.check(tok, "GET", PATH, now)

    pj_key = pyjwt.PyJWK(jwks["keys"][0], algorithm=alg).key
    opts = {"require": ["exp", "iss", "sub", "aud"]}
    # PyJWT checks exp against the real clock: mint a token valid now for it.
    real_now = int(time.time())
    pj_tok = m.token(alg, aud=[AUD], iat=real_now - 10, exp=real_now + 3600)

    def pyjwt_decode():
        c = pyjwt.decode(pj_tok, pj_key, algorithms=[alg], audience=AUD, issuer=m.ISS, options=opts)
        # the equivalent of our path check: the x-nmos-node claim grants read of `self`
        if "*" not in c["x-nmos-node"]["read"]:
            raise ValueError

    pyjwt_decode()
    fns = {"floor": floor, "first": first_seen, "pyjwt": pyjwt_decode}
    oxy = oxyjwt_decoder(jwks["keys"][0], alg, pj_tok, m.ISS, opts)
    if oxy is not None:
        fns["oxyjwt"] = oxy
    if alg == "RS512":
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

        assert pure.verify(alg, key, si, raw_sig)
        vp = TokenValidator(jwks=jwks, audience=[AUD], issuers=[m.ISS], backend="pure")

        def pure_first():
            vp.forget()
            vp.check(tok, "GET", PATH, now)

        fns.update(bare_pow=bare_pow, pure=pure_verify, pure_first=pure_first)
    # Issue 21: the same decision under the IPMX profile (its claim rules, OAIM 1 audience, aud-index
    # evaluator), on a token of the same size and key, in the same interleaved run.
    vi = TokenValidator(jwks=jwks, issuers=[m.ISS], backend="cryptography", profile="ipmx", oaim=1, cert_names=[AUD])
    tok_i = m.token(alg, aud=[AUD], **{"x-nmos-query": {"read": ["*"], "write": ["*"]},
                                       "x-nmos-connection": {"read": ["*"], "write": ["*"]}})
    assert vi.check(tok_i, "GET", PATH, now).status == 200

    def ipmx_first():
        vi.forget()
        vi.check(tok_i, "GET", PATH, now)

    def ipmx_cached():
        vi.check(tok_i, "GET", PATH, now)

    fns.update(ipmx_first=ipmx_first, ipmx_cached=ipmx_cached)
    stage_fns = stages(v, tok)
    fns.update(stage_fns)
    fns["cached"] = cached
    rows = measure(fns, n, rounds)  # one interleaved run: stages and totals under the same load
    rows["stages"] = dict((k, rows.pop(k)[0]) for k in stage_fns)
    return rows


def oxyjwt_decoder(jwk, alg, token, issuer, opts):
    """oxyjwt's `decode` of `token` (raw verify + exp/iss/aud, no IS-10 path rules), or None when
    oxyjwt is not installed or does not do `alg` (0.9.0 has no ES512)."""
    try:
        import oxyjwt
    except ImportError:
        return None
    try:
        key = oxyjwt.PyJWK(jwk, algorithm=alg).key

        def decode():
            oxyjwt.decode(token, key, algorithms=[alg], audience=AUD, issuer=issuer, options=opts)

        decode()
    except Exception:  # noqa: BLE001 (oxyjwt's own errors: unsupported algorithm, key type)
        return None
    return decode


# The first-seen path, stage by stage: the same calls TokenValidator.check makes on a cache
# miss, each timed on its own (interleaved like the rest). "rest of check()" is what the
# whole costs beyond the sum of its stages: cache lookups and inserts, call overhead.
STAGES = (
    ("split", "JWS split: size caps, header (cached by segment), base64url of claims + signature, JSON"),
    ("verify", "signature: key lookup + the backend's verify (the floor is most of it)"),
    ("claims", "claims: required members, types, exp/iat/nbf window (one pass)"),
    ("audience", "audience (cached by aud value)"),
    ("decide", "decision: path class (cached), x-nmos-* matchers (cached by value), Decision"),
)


def stages(v, tok):
    """{stage name: function} for the stages of STAGES, on validator `v` and token `tok`."""
    from nmosauth_lite import claims as _claims
    from nmosauth_lite import jws as _jws

    header, alg, kid, claims, si, sig = _jws.split(tok, v.algorithms)
    keys = v.keys.keys_for(claims["iss"])
    backend = v.backend
    entry = v._admit(tok, claims["iat"])
    v.forget()

    def decide():
        entry.decisions = {}
        entry.apis = {}
        v._decide(entry, "GET", PATH)

    return {
        "split": lambda: _jws.split(tok, v.algorithms),
        "verify": lambda: _jws.verify_parts(alg, kid, si, sig, keys, backend),
        "claims": lambda: _claims.check_access(claims, v.leeway),
        "audience": lambda: v._audience_ok(claims["aud"]),
        "decide": decide,
    }


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
    p99 = lambda xs: sorted(x[0] for x in xs)[min(len(xs) - 1, int(len(xs) * 0.99))]  # noqa: E731
    return {"ours_ms": med(ours, 0), "base_ms": med(base, 0), "ours_rss": med(ours, 1), "base_rss": med(base, 1),
            "ours_p99": p99(ours), "base_p99": p99(base),
            "ratio": statistics.median(o[0] / b[0] for o, b in zip(ours, base))}  # per interleaved pair


def stage_lines(res):
    algs = list(res)
    lines = ["| first-seen stage (µs, median) | %s | what |" % " | ".join(algs),
             "|---|" + "---:|" * len(algs) + "---|"]

    def row(label, values, what):
        lines.append("| %s | %s | %s |" % (label, " | ".join("%.2f" % v for v in values), what))

    for key, what in STAGES:
        row(key, [res[a]["stages"][key] for a in algs], what)
    row("rest of check()", [res[a]["first"][0] - sum(res[a]["stages"].values()) for a in algs],
        "token-cache lookup and insert, entry, calls")
    row("**whole first-seen check**", [res[a]["first"][0] for a in algs], "")
    row("**beyond the floor**", [res[a]["first"][0] - res[a]["floor"][0] for a in algs],
        "first-seen minus the raw verify")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("-n", type=int, default=6000, help="calls per function, spread over the rounds")
    ap.add_argument("--rounds", type=int, default=30, help="interleaved rounds")
    ap.add_argument("--cold-rounds", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="fewer calls and rounds (noisier)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()
    if args.quick:
        args.n, args.rounds, args.cold_rounds = 1500, 10, 7
    m = Minter()
    res = dict((alg, bench_alg(m, alg, args.n, args.rounds)) for alg in ALGS)
    cold = bench_cold(m, args.cold_rounds)
    names = {"RS512": "RS512 / RSA-2048", "ES256": "ES256 / P-256", "ES512": "ES512 / P-521", "RS256": "RS256 / RSA-2048"}
    lines = ["| measurement | %s |" % " | ".join(names[a] for a in ALGS), "|---|" + "---|" * len(ALGS)]

    def cell(alg, k):
        r = res[alg].get(k)
        return "-" if r is None else "%.1f µs (p99 %.1f)" % r[:2]

    def rcell(alg, a, b):
        return "-" if a not in res[alg] or b not in res[alg] else "%.2fx" % ratio(res[alg], a, b)

    def row(label, fn):
        lines.append("| %s | %s |" % (label, " | ".join(fn(a) for a in ALGS)))

    row("raw `cryptography` verify (floor)", lambda a: cell(a, "floor"))
    row("ours, first-seen token, full IS-10 checks", lambda a: cell(a, "first"))
    row("ours, cached token", lambda a: cell(a, "cached"))
    row("PyJWT `decode`, same checks", lambda a: cell(a, "pyjwt"))
    row("oxyjwt `decode` (Rust): signature, exp, iss, aud; no IS-10 path rules", lambda a: cell(a, "oxyjwt"))
    row("**first-seen / floor** (target RS512 <= 1.5x, ES256 <= 1.3x)", lambda a: rcell(a, "first", "floor"))
    row("**PyJWT / ours first-seen** (target RS512 >= 2.5x)", lambda a: rcell(a, "pyjwt", "first"))
    row("**oxyjwt / floor**", lambda a: rcell(a, "oxyjwt", "floor"))
    row("**ours first-seen (full IS-10) / oxyjwt**", lambda a: rcell(a, "first", "oxyjwt"))
    row("ours, first-seen token, IPMX profile (issue 21)", lambda a: cell(a, "ipmx_first"))
    row("ours, cached token, IPMX profile", lambda a: cell(a, "ipmx_cached"))
    row("**IPMX / IS-10 first-seen**", lambda a: rcell(a, "ipmx_first", "first"))
    only = lambda k: lambda a: cell(a, k) if a == "RS512" else "-"  # noqa: E731
    row("pure backend verify", only("pure"))
    row("bare `pow()` + sha512", only("bare_pow"))
    row("**pure / bare pow** (target <= 1.3x)", lambda a: rcell(a, "pure", "bare_pow") if a == "RS512" else "-")
    row("pure backend, first-seen token, full checks", only("pure_first"))
    lines.append("")
    lines += stage_lines(res)
    lines.append("")
    lines.append("| cold start, one RS512 token | wall ms (median) | wall ms (p99) | peak RSS MiB |")
    lines.append("|---|---|---|---|")
    lines.append("| `nmosauth-lite verify` process | %.1f | %.1f | %.1f |" % (cold["ours_ms"], cold["ours_p99"], cold["ours_rss"]))
    lines.append("| python + import cryptography + one verify | %.1f | %.1f | %.1f |"
                 % (cold["base_ms"], cold["base_p99"], cold["base_rss"]))
    lines.append("| **ratio** (target <= 1.15x) | %.2fx | | %.2fx |" % (cold["ratio"], cold["ours_rss"] / cold["base_rss"]))
    print("\n".join(lines))
    if args.json:
        doc = {"validate": {}, "cold": cold}
        for alg, r in res.items():
            doc["validate"][alg] = dict((k, list(v[:2]) if k != "stages" else v) for k, v in r.items())
            doc["validate"][alg]["ratios"] = {"first_floor": ratio(r, "first", "floor"),
                                              "pyjwt_first": ratio(r, "pyjwt", "first")}
            if "oxyjwt" in r:
                doc["validate"][alg]["ratios"]["oxyjwt_floor"] = ratio(r, "oxyjwt", "floor")
                doc["validate"][alg]["ratios"]["first_oxyjwt"] = ratio(r, "first", "oxyjwt")
            if "pure" in r:
                doc["validate"][alg]["ratios"]["pure_bare"] = ratio(r, "pure", "bare_pow")
                doc["validate"][alg]["ratios"]["pure_first_first"] = ratio(r, "pure_first", "first")
            doc["validate"][alg]["ratios"]["cached_first"] = r["cached"][0] / r["first"][0]
            doc["validate"][alg]["ratios"]["ipmx_first_first"] = ratio(r, "ipmx_first", "first")
        print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
