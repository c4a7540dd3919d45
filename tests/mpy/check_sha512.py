"""crypto.sha512: the pure SHA-512/384 against digests computed by CPython's hashlib
(FIPS 180-4 examples and padding-boundary lengths), one-shot and incremental."""

import binascii

import harness
from nmosauth_lite.crypto import sha512 as S


def _vectors():
    return harness.load_json("tests/mpy/data/lane-vectors.json")["sha"]


def check_known_digests():
    for v in _vectors():
        data = binascii.unhexlify(v["input_hex"])
        got = getattr(S, v["name"])(data).hexdigest()
        harness.eq(got, v["digest_hex"], "%s of %d bytes" % (v["name"], len(data)))


def check_fips_abc_literal():
    # FIPS 180-4 / NIST example "abc" (also in lane-vectors.json; here as printed by NIST).
    harness.eq(S.sha512(b"abc").hexdigest()[:32], "ddaf35a193617abacc417349ae204131", "sha512 abc")
    harness.eq(S.sha384(b"abc").hexdigest()[:32], "cb00753f45a35e8bb5a03d699ac65007", "sha384 abc")


def check_incremental_updates_match_one_shot():
    data = bytes(range(256)) * 2
    want = S.sha512(data).digest()
    for step in (1, 7, 127, 128, 129, 300):
        h = S.sha512()
        for i in range(0, len(data), step):
            h.update(data[i : i + step])
        harness.eq(h.digest(), want, "step %d" % step)


def check_digest_does_not_finalize_and_copy_forks():
    h = S.sha512(b"ab")
    first = h.digest()
    harness.eq(h.digest(), first, "digest twice")
    fork = h.copy()
    fork.update(b"c")
    harness.eq(h.digest(), first, "original untouched by copy")
    harness.eq(fork.digest(), S.sha512(b"abc").digest(), "fork")
    h.update(bytearray(b"c"))
    harness.eq(h.digest(), fork.digest(), "bytearray update")


def check_sizes_and_names():
    harness.eq((S.sha512().digest_size, len(S.sha512().digest()), S.sha512().name), (64, 64, "sha512"), "sha512")
    harness.eq((S.sha384().digest_size, len(S.sha384().digest()), S.sha384().name), (48, 48, "sha384"), "sha384")
    harness.eq(S.sha512.block_size, 128, "block size")


def check_refuses_text():
    harness.raises(TypeError, S.sha512().update, "abc")


def check_timing_note():
    data = b"x" * 1024
    start = harness.clock_ms()
    S.sha512(data).digest()
    harness.note("sha512 of 1 KiB (pure): %.1f ms" % harness.elapsed_ms(start))
