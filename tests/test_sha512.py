"""Our pure SHA-512/SHA-384 (FIPS 180-4) against hashlib and the FIPS 180-2 examples.

It only runs for real on MicroPython (whose hashlib lacks the SHA-512 family), so
here it is checked byte-for-byte against hashlib: every length 0..300, the
111/112/128-byte padding boundaries, and arbitrary chunking of update() calls.
"""

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite.crypto import sha512 as ours

ALGS = [("sha512", ours.sha512, hashlib.sha512), ("sha384", ours.sha384, hashlib.sha384)]


@pytest.mark.parametrize("name,mine,ref", ALGS)
def test_matches_hashlib_for_every_length_up_to_300(name, mine, ref):
    rng = random.Random(180)
    for n in range(301):
        data = rng.randbytes(n)
        assert mine(data).digest() == ref(data).digest(), (name, n)


@pytest.mark.parametrize("name,mine,ref", ALGS)
def test_padding_boundaries(name, mine, ref):
    # FIPS 180-4 §5.1.2: one 0x80 byte and a 16-byte length must fit after the message,
    # so 111 bytes is the longest one-block tail and 112..127 spill into a second block.
    for base in (0, 128, 256, 1024):
        for n in range(base + 108, base + 132):
            for fill in (b"\x00", b"\xff", b"a"):
                data = fill * n
                assert mine(data).digest() == ref(data).digest(), (name, n, fill)


def test_fips_180_2_examples():
    # FIPS 180-2 Appendix C.1 / D.1 ("abc") and C.2 / D.2 (two-block message).
    two_block = b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
    assert ours.sha512(b"abc").hexdigest() == (
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    )
    assert ours.sha384(b"abc").hexdigest() == (
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
    )
    assert ours.sha512(two_block).hexdigest() == (
        "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
        "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"
    )
    assert ours.sha384(two_block).hexdigest() == (
        "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039"
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.sampled_from(ALGS))
def test_incremental_update_equals_one_shot(chunks, alg):
    _name, mine, ref = alg
    h = mine()
    r = ref()
    for c in chunks:
        h.update(c)
        r.update(c)
    assert h.digest() == r.digest()
    assert h.digest() == h.digest()  # digest() does not finalize the object
    assert mine(b"".join(chunks)).hexdigest() == r.hexdigest()


def test_copy_forks_the_state_and_hashlib_style_attributes():
    h = ours.sha512(b"x" * 200)
    c = h.copy()
    c.update(b"y")
    assert h.digest() == hashlib.sha512(b"x" * 200).digest()
    assert c.digest() == hashlib.sha512(b"x" * 200 + b"y").digest()
    for mine, ref in ((ours.sha512, hashlib.sha512), (ours.sha384, hashlib.sha384)):
        assert (mine().name, mine().digest_size, mine().block_size) == (ref().name, ref().digest_size, ref().block_size)
        assert mine(bytearray(b"ab")).digest() == ref(b"ab").digest()
        assert mine(memoryview(b"ab")).digest() == ref(b"ab").digest()


def test_refuses_str_like_hashlib():
    with pytest.raises(TypeError):
        ours.sha512("abc")
    with pytest.raises(TypeError):
        ours.sha384().update("abc")
