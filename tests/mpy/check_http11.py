"""http11: the request corpus (tests/vectors/http/requests.json) whole and split in two at
every 7th byte (small inputs), on MicroPython as on CPython: good requests parse to the expected messages,
hostile ones raise HTTPError with the expected status hint (RFC 9112)."""

import harness
from nmosauth_lite.errors import ProtocolError
from nmosauth_lite.http11 import CLOSED, NEED_DATA, Data, EndOfMessage, HTTPError, Request, RequestParser, ResponseParser

CORPUS = harness.load_json("tests/vectors/http/requests.json")


def latin1(text):
    return bytes([ord(c) for c in text])  # MicroPython's str.encode knows UTF-8 only


def parse(pieces, eof=False):
    p = RequestParser()
    msgs = []

    def pull():
        while True:
            ev = p.next_event()
            if ev is NEED_DATA or ev is CLOSED:
                return
            if isinstance(ev, Request):
                msgs.append([ev, b"", None])
            elif isinstance(ev, Data):
                msgs[-1][1] += ev.data
            elif isinstance(ev, EndOfMessage):
                msgs[-1][2] = True

    for piece in pieces:
        p.feed(piece)
        pull()
    if eof:
        p.feed_eof()
        pull()
    return msgs


def _splits(raw):
    """The whole input, plus two-piece splits at every 7th byte for small inputs (the
    WebAssembly heap is bounded; the CPython suite splits everything at every byte)."""
    if len(raw) > 2048:
        return [[raw]]
    return [[raw]] + [[raw[:i], raw[i:]] for i in range(0, len(raw) + 1, 7)]


def _good(case):
    def check():
        raw = latin1(case["raw"])
        for pieces in _splits(raw):
            msgs = parse(pieces)
            harness.eq(len(msgs), len(case["messages"]), "message count")
            for (head, body, done), e in zip(msgs, case["messages"]):
                harness.eq(head.method, latin1(e["method"]), "method")
                harness.eq(head.target, latin1(e["target"]), "target")
                harness.eq(body, latin1(e["body"]), "body")
                harness.eq(head.keep_alive, e["keep_alive"], "keep-alive")
                harness.true(done, "message completed")
                if "headers" in e:
                    harness.eq(head.headers, [(latin1(n), latin1(v)) for n, v in e["headers"]], "headers")
    return check


def _bad(case):
    def check():
        raw = latin1(case["raw"])
        for pieces in _splits(raw):
            try:
                parse(pieces, eof=True)
            except HTTPError as e:
                harness.true(isinstance(e, ProtocolError), "ProtocolError subclass")
                harness.eq(e.status_hint, case["status"], "status hint")
                continue
            harness.fail("accepted: " + case["name"])
    return check


def check_response_parser_reads_content_length_body():
    p = ResponseParser()
    p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    head = p.next_event()
    harness.eq(head.status, 200, "status")
    harness.eq(p.next_event().data, b"ok", "body")


CHECKS = [("good: " + c["name"], _good(c)) for c in CORPUS["good"]] + [("bad: " + c["name"], _bad(c)) for c in CORPUS["bad"]]


def check_endless_one_byte_chunks_are_refused_by_count():
    # issue 23: chunk count and framing are bounded, not only the payload
    p = ResponseParser(max_body=1024 * 1024)
    p.start("GET")
    p.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    refused = False
    for _ in range(p.max_chunks // 256 + 2):
        p.feed(b"1\r\nx\r\n" * 256)
        try:
            while p.next_event() is not NEED_DATA:
                pass
        except HTTPError as exc:
            refused = exc.status_hint == 502
            break
    harness.true(refused, "endless chunks refused")


def check_endless_interim_responses_are_refused():
    p = ResponseParser()
    p.start("GET")
    p.feed(b"HTTP/1.1 100 Continue\r\n\r\n" * 20)
    refused = False
    try:
        while p.next_event() is not NEED_DATA:
            pass
    except HTTPError:
        refused = True
    harness.true(refused, "endless 1xx refused")
