"""SHA-512 and SHA-384 (FIPS 180-4 §6.4, §6.5) in plain Python, hashlib-style.

Only for interpreters whose hashlib lacks them (MicroPython ships sha256 only),
so the pure backend can still check RS384/RS512/ES384 there. CPython code uses
hashlib; this module is slow by design and never imported when hashlib has both.
Core module: imports nothing beyond binascii (MicroPython 1.27 compatible).
"""

import binascii

_MASK = 0xFFFFFFFFFFFFFFFF

# FIPS 180-4 §4.2.3: first 64 bits of the fractional parts of the cube roots
# of the first 80 primes.
_K = (
    0x428A2F98D728AE22, 0x7137449123EF65CD, 0xB5C0FBCFEC4D3B2F, 0xE9B5DBA58189DBBC,
    0x3956C25BF348B538, 0x59F111F1B605D019, 0x923F82A4AF194F9B, 0xAB1C5ED5DA6D8118,
    0xD807AA98A3030242, 0x12835B0145706FBE, 0x243185BE4EE4B28C, 0x550C7DC3D5FFB4E2,
    0x72BE5D74F27B896F, 0x80DEB1FE3B1696B1, 0x9BDC06A725C71235, 0xC19BF174CF692694,
    0xE49B69C19EF14AD2, 0xEFBE4786384F25E3, 0x0FC19DC68B8CD5B5, 0x240CA1CC77AC9C65,
    0x2DE92C6F592B0275, 0x4A7484AA6EA6E483, 0x5CB0A9DCBD41FBD4, 0x76F988DA831153B5,
    0x983E5152EE66DFAB, 0xA831C66D2DB43210, 0xB00327C898FB213F, 0xBF597FC7BEEF0EE4,
    0xC6E00BF33DA88FC2, 0xD5A79147930AA725, 0x06CA6351E003826F, 0x142929670A0E6E70,
    0x27B70A8546D22FFC, 0x2E1B21385C26C926, 0x4D2C6DFC5AC42AED, 0x53380D139D95B3DF,
    0x650A73548BAF63DE, 0x766A0ABB3C77B2A8, 0x81C2C92E47EDAEE6, 0x92722C851482353B,
    0xA2BFE8A14CF10364, 0xA81A664BBC423001, 0xC24B8B70D0F89791, 0xC76C51A30654BE30,
    0xD192E819D6EF5218, 0xD69906245565A910, 0xF40E35855771202A, 0x106AA07032BBD1B8,
    0x19A4C116B8D2D0C8, 0x1E376C085141AB53, 0x2748774CDF8EEB99, 0x34B0BCB5E19B48A8,
    0x391C0CB3C5C95A63, 0x4ED8AA4AE3418ACB, 0x5B9CCA4F7763E373, 0x682E6FF3D6B2B8A3,
    0x748F82EE5DEFB2FC, 0x78A5636F43172F60, 0x84C87814A1F0AB72, 0x8CC702081A6439EC,
    0x90BEFFFA23631E28, 0xA4506CEBDE82BDE9, 0xBEF9A3F7B2C67915, 0xC67178F2E372532B,
    0xCA273ECEEA26619C, 0xD186B8C721C0C207, 0xEADA7DD6CDE0EB1E, 0xF57D4F7FEE6ED178,
    0x06F067AA72176FBA, 0x0A637DC5A2C898A6, 0x113F9804BEF90DAE, 0x1B710B35131C471B,
    0x28DB77F523047D84, 0x32CAAB7B40C72493, 0x3C9EBE0A15C9BEBC, 0x431D67C49C100D4C,
    0x4CC5D4BECB3E42B6, 0x597F299CFC657E2A, 0x5FCB6FAB3AD6FAEC, 0x6C44198C4A475817,
)

# FIPS 180-4 §5.3.5: square roots of the first 8 primes.
_IV512 = (
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
)
# FIPS 180-4 §5.3.4: square roots of the 9th to 16th primes.
_IV384 = (
    0xCBBB9D5DC1059ED8, 0x629A292A367CD507, 0x9159015A3070DD17, 0x152FECD8F70E5939,
    0x67332667FFC00B31, 0x8EB44A8768581511, 0xDB0C2E0D64F98FA7, 0x47B5481DBEFA4FA4,
)

_BLOCK = 128


def _compress(h, block, off):
    """One FIPS 180-4 §6.4.2 round over block[off:off+128]; updates the list h in place."""
    mask = _MASK
    w = [int.from_bytes(block[off + i : off + i + 8], "big") for i in range(0, _BLOCK, 8)]
    for t in range(16, 80):
        x = w[t - 15]
        s0 = ((x >> 1) | (x << 63)) ^ ((x >> 8) | (x << 56)) ^ (x >> 7)
        x = w[t - 2]
        s1 = ((x >> 19) | (x << 45)) ^ ((x >> 61) | (x << 3)) ^ (x >> 6)
        w.append((w[t - 16] + (s0 & mask) + w[t - 7] + (s1 & mask)) & mask)
    a, b, c, d, e, f, g, hh = h
    for t in range(80):
        s1 = ((e >> 14) | (e << 50)) ^ ((e >> 18) | (e << 46)) ^ ((e >> 41) | (e << 23))
        ch = (e & f) ^ (~e & g)
        t1 = (hh + (s1 & mask) + (ch & mask) + _K[t] + w[t]) & mask
        s0 = ((a >> 28) | (a << 36)) ^ ((a >> 34) | (a << 30)) ^ ((a >> 39) | (a << 25))
        maj = (a & b) ^ (a & c) ^ (b & c)
        t2 = ((s0 & mask) + maj) & mask
        hh = g
        g = f
        f = e
        e = (d + t1) & mask
        d = c
        c = b
        b = a
        a = (t1 + t2) & mask
    h[0] = (h[0] + a) & mask
    h[1] = (h[1] + b) & mask
    h[2] = (h[2] + c) & mask
    h[3] = (h[3] + d) & mask
    h[4] = (h[4] + e) & mask
    h[5] = (h[5] + f) & mask
    h[6] = (h[6] + g) & mask
    h[7] = (h[7] + hh) & mask


class _SHA2x64:
    """Shared SHA-512/384 state; subclasses set name, digest_size and _IV."""

    block_size = _BLOCK
    name = ""
    digest_size = 0
    _IV = ()

    def __init__(self, data=b""):
        self._h = list(self._IV)
        self._buf = b""
        self._count = 0  # message length in bytes so far
        if data:
            self.update(data)

    def update(self, data):
        if isinstance(data, str):
            raise TypeError("Unicode-objects must be encoded before hashing")
        data = bytes(data)
        self._count += len(data)
        buf = self._buf + data
        end = len(buf) - len(buf) % _BLOCK
        off = 0
        while off < end:
            _compress(self._h, buf, off)
            off += _BLOCK
        self._buf = buf[end:]

    def copy(self):
        other = type(self)()
        other._h = list(self._h)
        other._buf = self._buf
        other._count = self._count
        return other

    def digest(self):
        # FIPS 180-4 §5.1.2: 0x80, zeros, then the bit length as 128-bit big-endian.
        h = list(self._h)
        tail = self._buf + b"\x80"
        tail += b"\x00" * ((_BLOCK - 16 - len(tail)) % _BLOCK)
        tail += (self._count * 8).to_bytes(16, "big")
        off = 0
        while off < len(tail):
            _compress(h, tail, off)
            off += _BLOCK
        out = b"".join([v.to_bytes(8, "big") for v in h])
        return out[: self.digest_size]

    def hexdigest(self):
        return binascii.hexlify(self.digest()).decode()


class sha512(_SHA2x64):  # noqa: N801 (hashlib's naming)
    name = "sha512"
    digest_size = 64
    _IV = _IV512


class sha384(_SHA2x64):  # noqa: N801
    name = "sha384"
    digest_size = 48
    _IV = _IV384
