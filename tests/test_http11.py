"""nmosauth_lite.http11: the corpus (good and hostile requests), split reads at every
byte boundary, limits, responses, builders, and property tests of the parser."""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmosauth_lite import http11
from nmosauth_lite.errors import ProtocolError
from nmosauth_lite.http11 import (CLOSED, NEED_DATA, Data, EndOfMessage, HeaderError, HTTPError,
                                  Request, RequestParser, Response, ResponseParser)

with open(os.path.join(os.path.dirname(__file__), "vectors", "http", "requests.json")) as _f:
    CORPUS = json.load(_f)


def latin1(text):
    return text.encode("latin-1")


def parse_pieces(pieces, parser=None, eof=False):
    """Feed pieces one by one, pulling events after each; return the messages."""
    p = parser or RequestParser()
    msgs = []

    def pull():
        while True:
            ev = p.next_event()
            if ev is NEED_DATA or ev is CLOSED:
                return
            if isinstance(ev, (Request, Response)):
                msgs.append({"head": ev, "body": b"", "trailers": None})
            elif isinstance(ev, Data):
                assert ev.data, "Data events are never empty"
                msgs[-1]["body"] += ev.data
            else:
                assert isinstance(ev, EndOfMessage)
                msgs[-1]["trailers"] = list(ev.trailers)

    for piece in pieces:
        p.feed(piece)
        pull()
    if eof:
        p.feed_eof()
        pull()
    return msgs


def summary(msgs):
    out = []
    for m in msgs:
        h = m["head"]
        out.append((h.method, h.target, h.version, h.headers, m["body"], m["trailers"], h.keep_alive))
    return out


def splits(raw, every_below=3000):
    """Two-piece splits at every boundary (sampled for big inputs) plus byte-at-a-time."""
    step = 1 if len(raw) < every_below else max(1, len(raw) // 400)
    for i in range(0, len(raw) + 1, step):
        yield [raw[:i], raw[i:]]
    if len(raw) < every_below:
        yield [raw[i:i + 1] for i in range(len(raw))]


def check_expected(msgs, expected):
    assert len(msgs) == len(expected)
    for m, e in zip(msgs, expected):
        h = m["head"]
        assert h.method == latin1(e["method"])
        assert h.target == latin1(e["target"])
        assert h.version == latin1(e.get("version", "1.1"))
        assert m["body"] == latin1(e["body"])
        assert h.keep_alive is e["keep_alive"]
        assert m["trailers"] is not None, "message completed"
        if "headers" in e:
            assert h.headers == [(latin1(n), latin1(v)) for n, v in e["headers"]]
        if "trailers" in e:
            assert m["trailers"] == [(latin1(n), latin1(v)) for n, v in e["trailers"]]
        if "upgrade" in e:
            assert h.upgrade == latin1(e["upgrade"])
        assert h.expect_continue is e.get("expect_continue", False)


@pytest.mark.parametrize("case", CORPUS["good"], ids=lambda c: c["name"])
def test_good_request_parses_whole_and_at_every_split(case):
    raw = latin1(case["raw"])
    whole = parse_pieces([raw])
    check_expected(whole, case["messages"])
    for pieces in splits(raw):
        assert summary(parse_pieces(pieces)) == summary(whole)


@pytest.mark.parametrize("case", CORPUS["bad"], ids=lambda c: c["name"])
def test_hostile_request_is_rejected_whole_and_at_every_split(case):
    raw = latin1(case["raw"])
    for pieces in [[raw]] + list(splits(raw)):
        with pytest.raises(HTTPError) as info:
            parse_pieces(pieces, eof=True)
        assert info.value.status_hint == case["status"], pieces
        assert isinstance(info.value, ProtocolError)


def test_error_is_sticky():
    p = RequestParser()
    p.feed(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n")
    with pytest.raises(HTTPError):
        p.next_event()
    with pytest.raises(HTTPError):
        p.next_event()


def test_header_block_limit_allows_32k_token_and_answers_431_beyond():
    token = b"a" * (32 * 1024)
    msgs = parse_pieces([b"GET / HTTP/1.1\r\nHost: n\r\nAuthorization: Bearer " + token + b"\r\n\r\n"])
    assert msgs[0]["head"].get(b"authorization") == b"Bearer " + token
    big = b"GET / HTTP/1.1\r\nHost: n\r\nX: " + b"a" * http11.MAX_HEADER_BLOCK + b"\r\n\r\n"
    for pieces in ([big], [big[:20000], big[20000:]]):
        with pytest.raises(HTTPError) as info:
            parse_pieces(pieces)
        assert info.value.status_hint == 431


def test_header_block_limit_hits_before_the_end_arrives():
    p = RequestParser()
    p.feed(b"GET / HTTP/1.1\r\nHost: n\r\n")
    assert p.next_event() is NEED_DATA
    with pytest.raises(HTTPError) as info:
        for _ in range(100):
            p.feed(b"X-Filler: " + b"b" * 1000 + b"\r\n")
            assert p.next_event() is NEED_DATA
    assert info.value.status_hint == 431


def test_too_many_headers_is_431():
    lines = b"".join(b"X-%d: v\r\n" % i for i in range(http11.MAX_HEADERS + 1))
    with pytest.raises(HTTPError) as info:
        parse_pieces([b"GET / HTTP/1.1\r\nHost: n\r\n" + lines + b"\r\n"])
    assert info.value.status_hint == 431


def test_request_line_limit_detected_without_a_line_end():
    p = RequestParser()
    p.feed(b"GET /" + b"a" * http11.MAX_REQUEST_LINE)
    with pytest.raises(HTTPError) as info:
        p.next_event()
    assert info.value.status_hint == 414


def test_chunked_body_over_max_body_is_413():
    p = RequestParser(max_body=10)
    body = b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n"
    with pytest.raises(HTTPError) as info:
        parse_pieces([b"POST / HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n" + body], p)
    assert info.value.status_hint == 413


def test_content_length_over_max_body_is_413_before_the_body():
    p = RequestParser(max_body=10)
    p.feed(b"POST / HTTP/1.1\r\nHost: n\r\nContent-Length: 11\r\n\r\n")
    with pytest.raises(HTTPError) as info:
        p.next_event()
    assert info.value.status_hint == 413


def test_eof_inside_body_is_an_error_and_clean_eof_is_closed():
    with pytest.raises(HTTPError):
        parse_pieces([b"POST / HTTP/1.1\r\nHost: n\r\nContent-Length: 5\r\n\r\nab"], eof=True)
    p = RequestParser()
    p.feed(b"GET / HTTP/1.1\r\nHost: n\r\n\r\n")
    assert isinstance(p.next_event(), Request)
    assert isinstance(p.next_event(), EndOfMessage)
    assert p.next_event() is NEED_DATA
    p.feed_eof()
    assert p.next_event() is CLOSED


def test_connection_close_ends_the_stream_even_if_more_bytes_follow():
    p = RequestParser()
    p.feed(b"GET / HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: n\r\n\r\n")
    assert isinstance(p.next_event(), Request)
    assert isinstance(p.next_event(), EndOfMessage)
    assert p.next_event() is CLOSED


def test_take_buffer_hands_over_bytes_after_an_upgrade_head():
    p = RequestParser()
    p.feed(b"GET /ws HTTP/1.1\r\nHost: n\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello")
    head = p.next_event()
    assert head.upgrade == b"websocket"
    assert isinstance(p.next_event(), EndOfMessage)
    assert p.take_buffer() == b"\x81\x05hello"
    assert p.next_event() is CLOSED


def test_upgrade_without_connection_token_is_ignored():
    p = RequestParser()
    p.feed(b"GET / HTTP/1.1\r\nHost: n\r\nUpgrade: websocket\r\n\r\n")
    assert p.next_event().upgrade is None


# --- responses -------------------------------------------------------------

def parse_response(raw, method="GET", eof=True, max_body=http11.DEFAULT_MAX_BODY):
    p = ResponseParser(max_body)
    p.start(method)
    return parse_pieces([raw], p, eof=eof), p


def test_response_content_length_and_keep_alive():
    msgs, _ = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", eof=False)
    head = msgs[0]["head"]
    assert (head.status, head.reason, msgs[0]["body"], head.keep_alive) == (200, b"OK", b"hi", True)


def test_response_to_head_and_204_304_have_no_body():
    msgs, _ = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", method="HEAD", eof=False)
    assert msgs[0]["body"] == b"" and msgs[0]["trailers"] == []
    for status in (204, 304):
        msgs, _ = parse_response(b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\n" % status, eof=False)
        assert msgs[0]["body"] == b"" and msgs[0]["trailers"] == []


def test_response_delimited_by_close():
    msgs, _ = parse_response(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
    assert msgs[0]["body"] == b"until the end"
    assert msgs[0]["head"].keep_alive is False


def test_response_chunked_split_everywhere():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    for pieces in splits(raw):
        p = ResponseParser()
        p.start("GET")
        msgs = parse_pieces(pieces, p)
        assert msgs[0]["body"] == b"abcde"


def test_response_interim_100_then_final():
    msgs, _ = parse_response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
                             eof=False)
    assert [m["head"].status for m in msgs] == [100, 201]


def test_response_101_stops_parsing():
    msgs, p = parse_response(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\n\r\n\x81\x00", eof=False)
    assert msgs[0]["head"].status == 101
    assert p.take_buffer() == b"\x81\x00"


def test_response_te_and_cl_uses_chunked_and_closes():
    msgs, _ = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"1\r\nx\r\n0\r\n\r\n", eof=False)
    assert msgs[0]["body"] == b"x" and msgs[0]["head"].keep_alive is False


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 20 OK\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"HTTP/3.0 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
])
def test_bad_responses_are_502(raw):
    with pytest.raises(HTTPError) as info:
        parse_response(raw)
    assert info.value.status_hint == 502


def test_response_over_size_cap():
    with pytest.raises(http11.BodyTooLargeError):
        parse_response(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 100, max_body=50)
    with pytest.raises(http11.BodyTooLargeError):
        parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", max_body=50)


# --- builders ----------------------------------------------------------------

def test_build_and_parse_round_trip():
    head = http11.build_request_head("POST", "/token?x=1", [("Host", "as.example.com"),
                                                             ("Content-Length", "3"), (b"X-B", b"\xe9")])
    msgs = parse_pieces([head + b"abc"])
    assert summary(msgs)[0][:5] == (b"POST", b"/token?x=1", b"1.1",
                                    [(b"host", b"as.example.com"), (b"content-length", b"3"),
                                     (b"x-b", b"\xe9")], b"abc")
    resp = http11.build_response_head(404, [("content-length", 0)])
    assert resp == b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    assert http11.build_chunk(b"hello") == b"5\r\nhello\r\n"
    assert http11.build_chunk(b"") == b""
    assert http11.build_last_chunk([("x-t", "1")]) == b"0\r\nx-t: 1\r\n\r\n"


@pytest.mark.parametrize("name,value", [
    ("x-a", "v\r\nSet-Cookie: evil=1"), ("x-a", "v\nx"), ("x-a", "v\rx"), ("x-a", "a\x00b"),
    ("x a", "v"), ("x:a", "v"), ("", "v"), ("x-a", "caf\u20ac"),
])
def test_builders_refuse_header_injection(name, value):
    with pytest.raises(HeaderError):
        http11.build_response_head(200, [(name, value)])
    with pytest.raises(HeaderError):
        http11.build_request_head("GET", "/", [(name, value)])


def test_builders_refuse_bad_start_lines():
    for method, target in (("GE T", "/"), ("GET", "/a b"), ("GET", "/\r\n"), ("GET", "")):
        with pytest.raises(HeaderError):
            http11.build_request_head(method, target, [])
    with pytest.raises(HeaderError):
        http11.build_response_head(200, [], reason="OK\r\nX: y")
    with pytest.raises(HeaderError):
        http11.build_response_head(42, [])


# --- properties ------------------------------------------------------------

def events_or_error(pieces, eof=True):
    try:
        return ("ok", summary(parse_pieces(pieces, eof=eof)))
    except HTTPError as exc:
        return ("error", exc.status_hint)


SEEDS = [latin1(c["raw"]) for c in CORPUS["good"] + CORPUS["bad"] if len(c["raw"]) < 2000]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), edits=st.lists(
    st.tuples(st.integers(0, 2000), st.sampled_from(["flip", "insert", "delete"]), st.binary(min_size=1, max_size=3)),
    max_size=4), cut=st.integers(0, 4000))
def test_mutated_requests_fail_only_with_http_errors_and_ignore_read_splits(seed, edits, cut):
    data = bytearray(seed)
    for pos, op, blob in edits:
        pos = pos % (len(data) + 1)
        if op == "flip" and pos < len(data):
            data[pos] = blob[0]
        elif op == "insert":
            data[pos:pos] = blob
        elif op == "delete":
            del data[pos:pos + len(blob)]
    data = bytes(data)
    cut = cut % (len(data) + 1)
    whole = events_or_error([data])
    assert events_or_error([data[:cut], data[cut:]]) == whole
    if whole[0] == "ok":  # what we accept re-serializes to something we read the same way
        for method, target, version, headers, body, trailers, keep in whole[1]:
            fields = [(n, v) for n, v in headers if n not in (b"transfer-encoding", b"content-length")]
            raw = http11.build_request_head(method, target, fields + [(b"content-length", len(body))],
                                            version) + body
            again = summary(parse_pieces([raw]))[0]
            assert again[:2] == (method, target) and again[4] == body


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 600))
def test_random_bytes_never_raise_anything_but_http_errors(blob, cut):
    for prefix in (b"", b"GET / HTTP/1.1\r\nHost: n\r\n", b"POST / HTTP/1.1\r\nHost: n\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n"):
        data = prefix + blob
        cut = cut % (len(data) + 1)
        assert events_or_error([data[:cut], data[cut:]]) == events_or_error([data])


TOKEN = st.text("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1,
                max_size=12)
VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
                max_size=40).map(lambda s: s.strip(" "))
TARGET = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="#"),
                 max_size=40).map(lambda s: "/" + s)


@settings(max_examples=200, deadline=None)
@given(method=TOKEN, target=TARGET,
       headers=st.lists(st.tuples(TOKEN.filter(lambda n: n.lower() not in (
           "host", "content-length", "transfer-encoding", "connection", "expect", "upgrade")), VALUE),
           max_size=8),
       body=st.binary(max_size=300), chunked=st.booleans(), sizes=st.lists(st.integers(1, 50), max_size=10),
       cuts=st.lists(st.integers(0, 2000), max_size=4))
def test_built_requests_parse_back_identically_however_split(method, target, headers, body, chunked, sizes,
                                                             cuts):
    fields = [("Host", "n")] + headers
    if chunked:
        wire_body, rest = b"", body
        for n in sizes + [len(body)]:
            wire_body += http11.build_chunk(rest[:n])
            rest = rest[n:]
        wire_body += http11.build_last_chunk()
        raw = http11.build_request_head(method, target, fields + [("Transfer-Encoding", "chunked")]) + wire_body
    else:
        raw = http11.build_request_head(method, target, fields + [("Content-Length", len(body))]) + body
    points = sorted(c % (len(raw) + 1) for c in cuts)
    pieces = [raw[a:b] for a, b in zip([0] + points, points + [len(raw)])]
    msg = parse_pieces(pieces)[0]
    head = msg["head"]
    assert head.method == method.encode() and head.target == target.encode()
    assert head.headers[1:len(headers) + 1] == [(n.lower().encode(), v.encode("latin-1")) for n, v in headers]
    assert msg["body"] == body


# --- issue 23: wire bytes and chunk counts are bounded, not only the payload -----------------
def _feed_until_error(p, head, piece, limit_bytes):
    """Feed `head`, then `piece` again and again; -> (error, wire bytes fed) once the parser refuses."""
    fed = len(head)
    p.feed(head)
    while fed < limit_bytes:
        try:
            while True:
                ev = p.next_event()
                if ev is NEED_DATA:
                    break
        except HTTPError as exc:
            return exc, fed
        p.feed(piece)
        fed += len(piece)
    return None, fed


def test_endless_one_byte_chunks_fail_fast_with_a_clear_error():
    # RFC 9112 §7.1; issue 23 attack 7: a 1 MiB payload cap let ~6 MiB of framing and 1M events through
    p = ResponseParser(max_body=1024 * 1024)
    p.start("GET")
    exc, fed = _feed_until_error(p, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n" * 64,
                                 64 * 1024 * 1024)
    assert exc is not None and exc.status_hint == 502 and "too many chunks" in exc.message
    assert fed <= 6 * p.max_chunks + 6 * 64 + 200  # stopped at the chunk count, long before the payload cap


def test_chunk_extensions_count_as_wire_bytes():
    p = RequestParser(max_body=64 * 1024)
    exc, fed = _feed_until_error(p, b"POST / HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n",
                                 b"1;" + b"e" * 4000 + b"\r\nx\r\n", 64 * 1024 * 1024)
    assert exc is not None and exc.status_hint == 413
    assert fed <= p.max_framing + 8 * 1024


def test_endless_interim_responses_are_refused():
    p = ResponseParser()
    p.start("GET")
    exc, fed = _feed_until_error(p, b"", b"HTTP/1.1 100 Continue\r\n\r\n", 1024 * 1024)
    assert exc is not None and exc.status_hint == 502 and "interim" in exc.message
    assert fed <= (http11.MAX_INTERIM + 2) * 32


def test_limits_reset_between_messages_on_one_connection():
    p = RequestParser(max_body=4096)
    one = b"POST / HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 1000 + b"0\r\n\r\n"
    for _ in range(3):  # 1,000 chunks each: under MIN_CHUNKS per message, never summed across messages
        msgs = parse_pieces([one], p)
        assert msgs[-1]["body"] == b"x" * 1000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(http11.MIN_AVG_CHUNK, 4096), min_size=1, max_size=200))
def test_bodies_of_ordinary_chunks_within_max_body_always_parse(sizes):
    total = sum(sizes)
    p = ResponseParser(max_body=total)
    p.start("GET")
    body = b"".join(b"%x\r\n%s\r\n" % (n, b"a" * n) for n in sizes) + b"0\r\n\r\n"
    msgs = parse_pieces([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body], p)
    assert len(msgs[0]["body"]) == total
