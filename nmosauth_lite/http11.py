"""HTTP/1.1 message framing without I/O (RFC 9110, RFC 9112).

Owns request and response heads, Content-Length and chunked bodies with trailers,
keep-alive, pipelining, and building heads with validated fields. Feed bytes with
`feed()`/`feed_eof()`, pull events with `next_event()`: a head (Request or Response),
Data, EndOfMessage, NEED_DATA ("read more") or CLOSED. Bad peer input raises HTTPError
(a ProtocolError) whose `status_hint` is the answer: 400, 413, 414, 417, 431, 501, 505;
a malformed *response* gets 502, so a proxy can pass it on. Line endings are CRLF
only: a bare LF or CR in a head is rejected (RFC 9112 §2.2 lets us; lenient parsers
that disagree about line ends are what request smuggling exploits).
Leaves out content codings, HTTP/2 and CONNECT tunnels. Core module: MicroPython rules.
"""

from .errors import ProtocolError

# --- limits -----------------------------------------------------------------
# RFC 9112 §3: recipients SHOULD support request lines of at least 8000 octets;
# a longer one is answered 414 URI Too Long (RFC 9110 §15.5.15).
MAX_REQUEST_LINE = 8192
# Field section size (header lines; the trailer section separately). IS-10 tokens
# ride in the Authorization header and 8 KiB header limits are common (IS-10 TOK-08);
# tokens with many x-nmos-* claims plus browser cookies need more, so 64 KiB (our
# design floor is 32 KiB). Over it: 431 (RFC 6585 §5).
MAX_HEADER_BLOCK = 64 * 1024
# Number of field lines: bounds per-message work and memory; 431 as well.
MAX_HEADERS = 128
# Default body cap per parser (413): NMOS API bodies are a few KiB. Servers,
# proxies and clients pass their own `max_body`.
DEFAULT_MAX_BODY = 1024 * 1024
# A chunk-size line with its extensions (ignored); RFC 9112 §7.1.1 allows a limit.
MAX_CHUNK_LINE = 4096
# Hex digits in a chunk size: 15 digits < 2**60, so peer input never builds a huge
# integer and sizes cannot wrap around in another parser (a known smuggling trick).
MAX_CHUNK_SIZE_DIGITS = 15
# Empty lines ignored before a request line (RFC 9112 §2.2: SHOULD ignore at least one).
MAX_LEADING_EMPTY_LINES = 8
# Wire cost of a chunked body, not only its payload (issue 23: endless 1-byte chunks made a
# client hold ~290 MB for a 1 MiB cap). A body may have max(MIN_CHUNKS, max_body // MIN_AVG_CHUNK)
# chunks and MAX_FRAMING_FLOOR + max_body // 4 bytes of chunk framing (size lines, extensions,
# CRLFs); over either: 413 (a response: 502).
MIN_CHUNKS = 1024
MIN_AVG_CHUNK = 256
MAX_FRAMING_FLOOR = 64 * 1024
# 1xx responses before the final one (RFC 9110 §15.2: a client must accept them; not endless).
MAX_INTERIM = 8


class HTTPError(ProtocolError):
    """Bad HTTP input from the peer; `status_hint` is how a server answers it."""


class BodyTooLargeError(HTTPError):
    """A body over the parser's `max_body` (413 for requests; a client's size cap)."""

    status_hint = 413


class HeaderError(HTTPError):
    """A field we were asked to *send* is invalid (CR/LF injection, bad name): our bug."""

    status_hint = 500


def _error(message, status, cls=HTTPError):
    exc = cls(message)
    exc.status_hint = status
    return exc


class _Sentinel:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


NEED_DATA = _Sentinel("NEED_DATA")  # feed more bytes (or feed_eof) and ask again
CLOSED = _Sentinel("CLOSED")  # no further message on this connection

# --- character classes (RFC 9110 §5.6.2 tchar, §5.5 field values) --------------
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VCHAR = bytes(range(0x21, 0x7F))
# Controls forbidden anywhere in a head or field value (HTAB allowed; CR and LF
# are counted separately). RFC 9110 §5.5: NUL, CR, LF MUST be rejected or replaced.
_CTL = bytes([c for c in range(0x20) if c != 9] + [0x7F])
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
# RFC 3986 reg-name / IP-literal characters, plus ":" for the port.
_HOST_CHARS = _DIGITS + b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-._~!$&'()*+;=%:[]"
_FAST = hasattr(b"", "translate")  # CPython: C-speed class checks


def _count_in(data, chars):  # pragma: no cover - MicroPython has no bytes.translate
    n = 0
    for c in data:
        if chars.find(bytes([c])) >= 0:
            n += 1
    return n


def _only(data, allowed):
    """True when every byte of `data` is in `allowed` (empty data is True)."""
    if _FAST:
        return not data.translate(None, allowed)
    return _count_in(data, allowed) == len(data)  # pragma: no cover


def _has_any(data, bad):
    """True when some byte of `data` is in `bad`."""
    if _FAST:
        return len(data.translate(None, bad)) != len(data)
    return _count_in(data, bad) > 0  # pragma: no cover


def _is_ascii(data):
    return data.isascii() if _FAST else _only(data, _VCHAR + b" \t")


# Common field names in the spellings clients send, mapped to lowercase: a fast path
# past the token check (anything else is checked byte by byte). Built once at import.
_KNOWN = {}
for _n in (b"host user-agent accept accept-encoding accept-language authorization connection "
           b"content-type content-length transfer-encoding origin referer cookie upgrade expect "
           b"cache-control pragma date server location te via forwarded x-forwarded-for "
           b"x-forwarded-proto x-forwarded-host if-none-match if-modified-since etag vary "
           b"sec-websocket-key sec-websocket-version sec-websocket-protocol sec-websocket-extensions "
           b"sec-websocket-accept access-control-request-method access-control-request-headers "
           b"www-authenticate retry-after keep-alive content-encoding last-modified set-cookie").split():
    _KNOWN[_n] = _KNOWN[b"-".join([p[:1].upper() + p[1:] for p in _n.split(b"-")])] = _n
_METHODS = {b"GET": 1, b"HEAD": 1, b"POST": 1, b"PUT": 1, b"DELETE": 1, b"OPTIONS": 1, b"PATCH": 1}


def is_token(data):
    """RFC 9110 §5.6.2 token: one or more tchar."""
    return len(data) > 0 and _only(data, _TCHAR)


def list_tokens(value):
    """Lowercased, stripped elements of a comma-separated field value (empties dropped)."""
    out = []
    for part in value.split(b","):
        part = part.strip(b" \t")
        if part:
            out.append(part.lower())
    return out


# --- events -----------------------------------------------------------------

class _Head:
    """Parsed head: `headers` is a list of (lowercased name, value) bytes, in order."""

    def _init(self, version, headers):
        self.version = version  # b"1.1" or b"1.0"
        self.headers = headers
        self.keep_alive = True
        self.content_length = None  # int when framed by Content-Length
        self.chunked = False
        self.upgrade = None  # Upgrade field value when Connection lists "upgrade"

    def get(self, name, default=None):
        """First value of field `name` (lowercase bytes), or `default`."""
        for n, v in self.headers:
            if n == name:
                return v
        return default

    def get_all(self, name):
        return [v for n, v in self.headers if n == name]


class Request(_Head):
    def __init__(self, method, target, version, headers):
        self._init(version, headers)
        self.method = method  # bytes, e.g. b"GET"
        self.target = target  # bytes, validated visible ASCII
        self.expect_continue = False

    def __repr__(self):
        return "<Request %r %r>" % (self.method, self.target)


class Response(_Head):
    def __init__(self, status, reason, version, headers):
        self._init(version, headers)
        self.status = status  # int
        self.reason = reason  # bytes

    def __repr__(self):
        return "<Response %d>" % self.status


class Data:
    def __init__(self, data):
        self.data = data  # bytes, a piece of the (de-chunked) body


class EndOfMessage:
    def __init__(self, trailers=()):
        self.trailers = trailers  # list of (name, value) from a chunked body's trailer section


_NO_TRAILERS = EndOfMessage(())

# parser states
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)
_FRAMING = {b"content-length": 1, b"transfer-encoding": 1, b"connection": 1, b"host": 1,
            b"expect": 1, b"upgrade": 1}


class _Parser:
    """Shared machinery; use RequestParser (servers) or ResponseParser (clients).

    The buffer is read through an offset (`_pos`): MicroPython's bytearray cannot
    delete slices, and a feed that is consumed whole is never copied.
    """

    _bad_status = 400  # response parsers answer 502 instead

    def __init__(self, max_body=DEFAULT_MAX_BODY):
        self.max_body = max_body
        self.max_chunks = max(MIN_CHUNKS, max_body // MIN_AVG_CHUNK)
        self.max_framing = MAX_FRAMING_FLOOR + max_body // 4
        self._chunks = 0
        self._framing_bytes = 0
        self._buf = b""
        self._pos = 0
        self._state = _HEAD
        self._scan = 0  # where the search for the end of the head resumes
        self._line_ok = False  # the first line of the pending head has ended in CRLF
        self._empty_lines = 0
        self._remaining = 0
        self._received = 0
        self._keep_alive = True
        self._eof = False
        self._error = None

    def feed(self, data):
        if not data:
            return
        pos = self._pos
        if pos >= len(self._buf):
            self._buf = bytes(data)
            self._pos = self._scan = 0
            return
        if pos or not isinstance(self._buf, bytearray):
            self._buf = bytearray(self._buf[pos:])
            self._scan = max(0, self._scan - pos)
            self._pos = 0
        self._buf += data

    def feed_eof(self):
        self._eof = True

    @property
    def buffered(self):
        """Bytes received and not yet turned into events."""
        return len(self._buf) - self._pos

    def take_buffer(self):
        """Hand over unparsed bytes (after a 101 upgrade); the parser is done."""
        data = bytes(self._buf[self._pos:])
        self._buf = b""
        self._pos = 0
        self._state = _DONE
        return data

    def next_event(self):
        if self._error is not None:
            raise self._error
        try:
            state = self._state
            if state == _HEAD:
                return self._next_head()
            if state == _LENGTH:
                return self._length_data()
            if state == _UNTIL_CLOSE:
                return self._close_data()
            if state == _DONE:
                return CLOSED
            return self._chunked()
        except HTTPError as exc:
            self._error = exc
            raise

    def _fixed_length(self, msg, cl):
        """Frame `msg` by its Content-Length value `cl` (RFC 9112 §6.3), within max_body."""
        n = _content_length(cl, self._err)
        if n > self.max_body:
            raise _error("body too large", 413, BodyTooLargeError)
        msg.content_length = self._remaining = n

    def _err(self, message, status=400):
        # A bad request gets its own status; a bad response is always a 502 for a proxy.
        return _error(message, self._bad_status if self._bad_status != 400 else status)

    def _need(self, where):
        if self._eof:
            raise self._err("connection closed inside a message " + where)
        return NEED_DATA

    def _take(self, n, skip=0):
        """Return the next `n` buffered bytes (fewer if not there), then skip `skip` more."""
        pos = self._pos
        data = self._buf[pos:pos + n]
        self._pos = pos + len(data) + skip
        return data if isinstance(data, bytes) else bytes(data)

    # --- heads ------------------------------------------------------------
    def _next_head(self):
        buf = self._buf
        pos = self._pos
        while self._scan == 0 and pos < len(buf) and buf[pos] == 13 and buf[pos:pos + 2] == b"\r\n":
            # RFC 9112 §2.2: ignore empty lines before the start line (a few).
            self._empty_lines += 1
            if self._empty_lines > MAX_LEADING_EMPTY_LINES:
                raise self._err("too many empty lines before a message")
            pos = self._pos = pos + 2
        if pos >= len(buf):
            if self._eof:
                self._state = _DONE
                return CLOSED
            return NEED_DATA
        end = buf.find(b"\r\n\r\n", max(pos, self._scan))
        if end < 0:
            self._check_partial_head()
            return self._need("head")
        head = self._take(end - pos, 4)
        self._scan = 0
        self._line_ok = False
        self._empty_lines = 0
        lines = head.split(b"\r\n")
        # Any CR or LF left after splitting on CRLF is bare (RFC 9112 §2.2); NUL and
        # other controls have no place in a head (RFC 9110 §5.5). One pass for all.
        if _has_any(b"".join(lines), _CTL):
            raise self._err("bare CR or LF, or a control character, in the message head")
        if len(lines[0]) > MAX_REQUEST_LINE:
            raise self._err("request line too long", 414)
        if len(head) - len(lines[0]) > MAX_HEADER_BLOCK:
            raise self._err("header section too large", 431)
        if len(lines) > MAX_HEADERS + 1:
            raise self._err("too many header fields", 431)
        msg = self._start_line(lines[0], parse_fields(lines, 1, self._bad_status))
        return self._framing(msg)

    def _check_partial_head(self):
        # Fail early on heads that can never be valid, rather than buffering to the limit.
        buf = self._buf
        pos = self._pos
        n = len(buf) - pos
        if not self._line_ok:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if n > MAX_REQUEST_LINE:
                    raise self._err("request line too long", 414)
            elif nl == pos or buf[nl - 1] != 13:
                raise self._err("bare LF in the message head")
            else:
                self._line_ok = True
        if n > MAX_REQUEST_LINE + MAX_HEADER_BLOCK + 4:
            raise self._err("header section too large", 431)
        if buf.find(b"\n\n", max(pos, self._scan)) >= 0:
            raise self._err("bare LF in the message head")
        self._scan = max(pos, len(buf) - 3)

    def _end_message(self, event):
        self._state = _HEAD if self._keep_alive else _DONE
        self._received = 0
        self._chunks = 0
        self._framing_bytes = 0
        return event

    # --- bodies -----------------------------------------------------------
    def _length_data(self):
        rem = self._remaining
        if rem == 0:
            return self._end_message(_NO_TRAILERS)
        if self._pos >= len(self._buf):
            return self._need("body")
        data = self._take(rem)
        self._remaining = rem - len(data)
        return Data(data)

    def _close_data(self):
        n = len(self._buf) - self._pos
        if n <= 0:
            if self._eof:
                self._keep_alive = False
                return self._end_message(_NO_TRAILERS)
            return NEED_DATA
        self._received += n
        if self._received > self.max_body:
            raise _error("body too large", 413, BodyTooLargeError)
        return Data(self._take(n))

    def _chunked(self):
        while True:
            buf = self._buf
            pos = self._pos
            state = self._state
            if state == _CHUNK_SIZE:
                i = buf.find(b"\r\n", pos)
                if i < 0 or i - pos > MAX_CHUNK_LINE:
                    if len(buf) - pos > MAX_CHUNK_LINE:
                        raise self._err("chunk-size line too long")
                    if buf.find(b"\n", pos) >= 0:
                        raise self._err("bare LF in chunked framing")
                    return self._need("body")
                size = self._chunk_size(self._take(i - pos, 2))
                self._chunks += 1
                self._framing_bytes += i - pos + 4  # the size line, its CRLF and the one after the data
                if self._chunks > self.max_chunks or self._framing_bytes > self.max_framing:
                    raise self._err("chunked body has too many chunks or too much framing", 413)
                if size == 0:
                    self._state = _TRAILERS
                    continue
                self._received += size
                if self._received > self.max_body:
                    raise _error("body too large", 413, BodyTooLargeError)
                self._remaining = size
                self._state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                if pos >= len(buf):
                    return self._need("body")
                data = self._take(self._remaining)
                self._remaining -= len(data)
                if self._remaining == 0:
                    self._state = _CHUNK_END
                return Data(data)
            elif state == _CHUNK_END:
                end = buf[pos:pos + 2]
                if end != b"\r\n":
                    if end[:1] not in (b"", b"\r") or len(end) == 2:
                        raise self._err("chunk data not followed by CRLF")
                    return self._need("body")
                self._pos = pos + 2
                self._state = _CHUNK_SIZE
            else:
                return self._trailers()

    def _chunk_size(self, line):
        if b"\r" in line or b"\n" in line:
            raise self._err("bare CR or LF in chunked framing")
        semi = line.find(b";")
        size = (line if semi < 0 else line[:semi]).rstrip(b" \t")  # BWS: RFC 9112 §7.1.1
        if not size or not _only(size, _HEX):
            raise self._err("bad chunk size")
        if len(size) > MAX_CHUNK_SIZE_DIGITS:
            raise self._err("chunk size too large")
        return int(size, 16)

    def _trailers(self):
        buf = self._buf
        pos = self._pos
        if buf[pos:pos + 2] == b"\r\n":
            self._pos = pos + 2
            return self._end_message(_NO_TRAILERS)
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0 or end - pos > MAX_HEADER_BLOCK:
            if len(buf) - pos > MAX_HEADER_BLOCK:
                raise self._err("trailer section too large", 431)
            if buf.find(b"\n\n", pos) >= 0 or buf[pos:pos + 1] == b"\n":
                raise self._err("bare LF in the trailer section")
            return self._need("trailer section")
        lines = self._take(end - pos, 4).split(b"\r\n")
        if _has_any(b"".join(lines), _CTL):
            raise self._err("bad character in the trailer section")
        if len(lines) > MAX_HEADERS:
            raise self._err("too many trailer fields", 431)
        return self._end_message(EndOfMessage(parse_fields(lines, 0, self._bad_status)))


def parse_fields(lines, start, bad_status=400):
    """Field lines -> [(lowercased name, value)]; RFC 9112 §5."""
    headers = []
    for i in range(start, len(lines)):
        line = lines[i]
        name, colon, value = line.partition(b":")
        lname = _KNOWN.get(name)
        if lname is not None:
            headers.append((lname, value.strip(b" \t")))
            continue
        if not colon or not is_token(name):
            if line[:1] in (b" ", b"\t"):
                # RFC 9112 §5.2: obs-fold in a request MUST be rejected (or replaced).
                raise _error("obsolete line folding", bad_status)
            # RFC 9112 §5.1: whitespace before the colon MUST be rejected with 400.
            raise _error("invalid field name", bad_status)
        headers.append((name.lower(), value.strip(b" \t")))
    return headers


def _version(raw, bad_status):
    if raw == b"HTTP/1.1":
        return b"1.1"
    if raw == b"HTTP/1.0":
        return b"1.0"
    if len(raw) == 8 and raw[:5] == b"HTTP/" and raw[6:7] == b"." and \
            _only(raw[5:6] + raw[7:8], _DIGITS):
        raise _error("HTTP version not supported", 505 if bad_status == 400 else bad_status)
    raise _error("bad HTTP version", bad_status)


def _scan_framing(msg, err, strict):
    """Collect the framing fields; sets keep_alive and upgrade. Returns (cl, te, host count)."""
    cl = te = conn = None
    hosts = 0
    for name, value in msg.headers:
        if name not in _FRAMING:
            continue
        if name == b"content-length":
            # RFC 9112 §6.3 (5): a repeated Content-Length is a smuggling vector; we refuse
            # even identical copies in requests (responses may repeat the same value).
            if cl is not None and (strict or cl != value):
                raise err("repeated Content-Length")
            cl = value
        elif name == b"transfer-encoding":
            te = value if te is None else te + b"," + value
        elif name == b"connection":
            conn = value if conn is None else conn + b"," + value
        elif name == b"host":
            hosts += 1
            if not _only(value, _HOST_CHARS):
                raise err("invalid Host")
        elif name == b"expect":
            if msg.version == b"1.1" and strict:  # RFC 9110 §10.1.1: ignored from HTTP/1.0
                if value.lower() != b"100-continue":
                    raise err("unsupported expectation", 417)
                msg.expect_continue = True
        else:
            msg.upgrade = value
    tokens = list_tokens(conn) if conn else ()
    if msg.version == b"1.1":
        msg.keep_alive = b"close" not in tokens
    else:
        msg.keep_alive = b"keep-alive" in tokens
    if b"upgrade" not in tokens and strict:
        msg.upgrade = None
    return cl, te, hosts


def _content_length(value, msg_err):
    # RFC 9110 §8.6: 1*DIGIT; lists ("5, 5"), signs and spaces are rejected.
    if not value or not _only(value, _DIGITS):
        raise msg_err("bad Content-Length")
    value = value.lstrip(b"0") or b"0"
    if len(value) > 18:
        raise _error("body too large", 413, BodyTooLargeError)
    return int(value)


class RequestParser(_Parser):
    """Server side: parses requests, one after another on a keep-alive connection."""

    def _start_line(self, line, headers):
        parts = line.split(b" ")
        if len(parts) != 3:
            raise self._err("malformed request line")
        method, target, version = parts
        if method not in _METHODS and not is_token(method):
            raise self._err("invalid method")
        # RFC 9112 §3.2: visible ASCII only, no fragment: anything else is read
        # differently by the next hop. Controls are already out (checked on the
        # whole head) and spaces cannot be in it, so ASCII is what is left to check.
        if not target or not _is_ascii(target) or b"#" in target:
            raise self._err("invalid request target")
        return Request(method, target, _version(version, 400), headers)

    def _framing(self, req):
        cl, te, hosts = _scan_framing(req, self._err, True)
        if req.version == b"1.1" and hosts != 1 or hosts > 1:
            raise self._err("exactly one Host field required")  # RFC 9112 §3.2
        self._remaining = 0
        self._state = _LENGTH
        if te is not None:
            if cl is not None:  # RFC 9112 §6.3 (3): the CL.TE / TE.CL smuggling pair
                raise self._err("both Transfer-Encoding and Content-Length")
            if req.version == b"1.0":  # RFC 9112 §6.1: framing is faulty
                raise self._err("Transfer-Encoding in an HTTP/1.0 request")
            codings = [c.strip(b" \t").lower() for c in te.split(b",")]
            if b"" in codings or b"chunked" in codings[:-1]:
                raise self._err("bad Transfer-Encoding")
            if codings != [b"chunked"]:  # RFC 9112 §6.1: SHOULD answer 501
                raise self._err("unsupported transfer coding", 501)
            req.chunked = True
            self._state = _CHUNK_SIZE
        elif cl is not None:
            self._fixed_length(req, cl)
        self._keep_alive = req.keep_alive
        return req


class ResponseParser(_Parser):
    """Client side: call start(method) for each request sent, in order, then parse."""

    _bad_status = 502

    def __init__(self, max_body=DEFAULT_MAX_BODY):
        _Parser.__init__(self, max_body)
        self._methods = []
        self._interim = 0

    def start(self, method):
        self._methods.append(method.upper() if isinstance(method, bytes) else method.upper().encode())

    def _start_line(self, line, headers):
        parts = line.split(b" ", 2)
        if len(parts) < 2 or len(parts[1]) != 3 or not _only(parts[1], _DIGITS) or parts[1][:1] == b"0":
            raise self._err("malformed status line")
        version = _version(parts[0], 502)
        return Response(int(parts[1]), parts[2] if len(parts) > 2 else b"", version, headers)

    def _framing(self, resp):
        cl, te, _ = _scan_framing(resp, self._err, False)
        status = resp.status
        if status < 200:
            if status == 101:  # the rest of the stream is the new protocol's
                self._state = _DONE
            else:
                self._interim += 1
                if self._interim > MAX_INTERIM:
                    raise self._err("too many interim (1xx) responses")
            return resp  # interim response: the final one follows
        self._interim = 0
        method = self._methods.pop(0) if self._methods else b"GET"
        self._remaining = 0
        self._state = _LENGTH
        if method == b"HEAD" or status == 204 or status == 304:  # RFC 9112 §6.3 (1)
            pass
        elif te is not None:
            # RFC 9112 §6.3 (3): Transfer-Encoding overrides Content-Length; close after.
            codings = list_tokens(te)
            if codings != [b"chunked"]:
                if b"chunked" in codings:
                    raise self._err("unsupported transfer coding")
                resp.keep_alive = False
                self._state = _UNTIL_CLOSE
            else:
                resp.chunked = True
                if cl is not None:
                    resp.keep_alive = False
                self._state = _CHUNK_SIZE
        elif cl is not None:
            self._fixed_length(resp, cl)
        else:
            resp.keep_alive = False  # RFC 9112 §6.3 (8): delimited by close
            self._state = _UNTIL_CLOSE
        self._keep_alive = resp.keep_alive
        return resp


# --- building heads ---------------------------------------------------------

REASONS = {  # RFC 9110 §15
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted",
    204: "No Content", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    408: "Request Timeout", 409: "Conflict", 411: "Length Required", 413: "Content Too Large",
    414: "URI Too Long", 415: "Unsupported Media Type", 417: "Expectation Failed",
    422: "Unprocessable Content", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported"}


def _as_bytes(x):
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        try:
            return x.encode("latin-1")
        except UnicodeError:
            raise HeaderError("field text is not Latin-1")
    if isinstance(x, int):
        return str(x).encode()
    return bytes(x)


def is_known_name(name):
    """True for common field names (bytes, any usual spelling): no token check needed."""
    return name in _KNOWN


def build_fields(headers, out):
    """Append validated `name: value` lines to the list `out` (names/values str or bytes)."""
    for name, value in headers:
        name = _as_bytes(name)
        value = _as_bytes(value)
        if name not in _KNOWN and not is_token(name):
            raise HeaderError("invalid field name")
        # CR or LF in a value would start a new field or the body (response
        # splitting); NUL is the third character RFC 9110 §5.5 rules out.
        if value.find(b"\r") >= 0 or value.find(b"\n") >= 0 or value.find(b"\0") >= 0:
            raise HeaderError("CR, LF or NUL in a field value")
        out.append(name + b": " + value + b"\r\n")
    return out


def build_request_head(method, target, headers, version=b"1.1"):
    method = _as_bytes(method)
    target = _as_bytes(target)
    if not is_token(method):
        raise HeaderError("invalid method")
    if not target or not _only(target, _VCHAR):
        raise HeaderError("invalid request target")
    out = build_fields(headers, [method + b" " + target + b" HTTP/" + version + b"\r\n"])
    out.append(b"\r\n")
    return b"".join(out)


def build_status_line(status, reason=None, version=b"1.1"):
    if not 100 <= status <= 999:
        raise HeaderError("bad status code")
    reason = _as_bytes(REASONS.get(status, "") if reason is None else reason)
    if _has_any(reason, _CTL):
        raise HeaderError("control character in the reason phrase")
    return b"HTTP/" + version + b" " + str(status).encode() + b" " + reason + b"\r\n"


def build_response_head(status, headers, reason=None, version=b"1.1"):
    out = build_fields(headers, [build_status_line(status, reason, version)])
    out.append(b"\r\n")
    return b"".join(out)


def build_chunk(data):
    """One chunk of a chunked body (an empty `data` would end the body: not allowed)."""
    if not data:
        return b""
    return ("%x\r\n" % len(data)).encode() + data + b"\r\n"


def build_last_chunk(trailers=()):
    return b"".join(build_fields(trailers, [b"0\r\n"])) + b"\r\n"
