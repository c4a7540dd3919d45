"""WebSocket framing, just enough to end a relayed socket with a close frame (RFC 6455 §5).

Owns: FrameCursor, which follows frame boundaries in one direction of a WebSocket byte
stream without buffering payloads (so a close frame can go between two frames, never into
one: §5.4 lets control frames sit between the fragments of a message), and build_close,
which makes a close frame (§5.5.1), masked when it goes toward a server (§5.3). Leaves out:
payload decoding, message reassembly, extensions (RSV bits pass through untouched).
Sans-I/O and MicroPython-safe: bytes in, counts and bytes out; the mask key comes in.
"""

from .errors import ProtocolError

MAX_HEADER = 14  # 2 + 8 (64-bit extended length) + 4 (mask key): RFC 6455 §5.2
MAX_CONTROL_PAYLOAD = 125  # §5.5: control frames carry at most 125 bytes
MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2  # the 2-byte status code comes first (§5.5.1)
OP_CLOSE = 8
_OPCODES = (0, 1, 2, 8, 9, 10)  # continuation, text, binary, close, ping, pong (§5.2, §11.8)


class FrameError(ProtocolError):
    """Bytes that are not a WebSocket frame stream (a relay then drops the connection)."""

    def __init__(self, message):
        super().__init__(message)


class FrameCursor:
    """Where the frame boundaries are in one direction of a WebSocket stream.

    masked: True for client-to-server bytes (every frame masked, §5.1), False for
    server-to-client (none masked), None to accept either. `feed` returns how many bytes
    to pass on; `closed` is True once a close frame has started.
    """

    def __init__(self, masked=None):
        self.masked = masked
        self.left = 0  # payload bytes of the current frame still to come
        self.head = b""  # a frame header received in part
        self.closed = False

    @property
    def at_boundary(self):
        return self.left == 0 and not self.head

    def feed(self, data, stop=False):
        """Follow `data`. Returns len(data); with `stop`, only the count up to the first
        frame boundary (0 when at one now): the caller passes on that many bytes and no
        more. Raises FrameError for a header no peer may send."""
        i = 0
        n = len(data)
        while i < n:
            if stop and self.left == 0 and not self.head:
                return i
            if self.left:
                take = self.left if self.left < n - i else n - i
                self.left -= take
                i += take
                continue
            head = self.head
            if not head and n - i >= 2:  # the common case: a whole header in this chunk
                want = _header_size(data[i + 1])
                if n - i >= want:
                    self._begin(data[i : i + want])
                    i += want
                    continue
            want = 2 if len(head) < 2 else _header_size(head[1])
            take = want - len(head)
            if take > n - i:
                take = n - i
            head = head + data[i : i + take]
            i += take
            if len(head) == 2:
                want = _header_size(head[1])
                if want > 2:
                    self.head = head
                    continue
            if len(head) < want:
                self.head = head
                continue
            self.head = b""
            self._begin(head)
        return n

    def _begin(self, head):
        b0 = head[0]
        b1 = head[1]
        opcode = b0 & 0x0F
        if opcode not in _OPCODES:
            raise FrameError("reserved WebSocket opcode")
        is_masked = (b1 & 0x80) != 0
        if self.masked is not None and is_masked != self.masked:
            raise FrameError("WebSocket frame masking is wrong for its direction")
        size = b1 & 0x7F
        if size == 126:
            size = (head[2] << 8) | head[3]
        elif size == 127:
            if head[2] & 0x80:
                raise FrameError("WebSocket frame length has its top bit set")  # §5.2
            size = 0
            for k in range(2, 10):
                size = (size << 8) | head[k]
        if opcode >= 8:
            if size > MAX_CONTROL_PAYLOAD or not (b0 & 0x80):
                raise FrameError("WebSocket control frame too long or fragmented")  # §5.5
            if opcode == OP_CLOSE:
                self.closed = True
        self.left = size


def _header_size(b1):
    size = b1 & 0x7F
    return 2 + (2 if size == 126 else 8 if size == 127 else 0) + (4 if b1 & 0x80 else 0)


def build_close(code, reason="", mask_key=None):
    """A close frame with a status code and a short UTF-8 reason (cut to 123 bytes);
    masked with the 4-byte `mask_key` when it goes toward a server (RFC 6455 §5.3)."""
    if not 1000 <= code <= 4999:
        raise ValueError("close code out of range")
    text = reason.encode("utf-8")[:MAX_CLOSE_REASON]
    while text:  # never cut inside a UTF-8 sequence
        try:
            text.decode("utf-8")
            break
        except UnicodeError:
            text = text[:-1]
    payload = bytes(((code >> 8) & 0xFF, code & 0xFF)) + text
    if mask_key is None:
        return bytes((0x80 | OP_CLOSE, len(payload))) + payload
    if len(mask_key) != 4:
        raise ValueError("a WebSocket mask key is 4 bytes")
    masked = bytes(payload[k] ^ mask_key[k & 3] for k in range(len(payload)))
    return bytes((0x80 | OP_CLOSE, 0x80 | len(payload))) + bytes(mask_key) + masked
