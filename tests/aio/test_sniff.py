"""Plain HTTP sent to a TLS port gets a 400 that says so (issue 22 item 8; aio/sniff.py).

Real sockets and real TLS on loopback: a plain request line gets a clear-text 400 naming https
(RFC 9112 §3 request line vs. RFC 8446 §5.1 handshake record), TLS clients are unaffected, and
neither sniffing nor the plain answer leaks a descriptor or leaves a connection counted.
"""

import asyncio
import os
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_http_server import open_from, start, wait_for
from tls_helpers import open_tls, pki, read_response, run  # noqa: F401

from nmosauth_lite.aio.sniff import PLAIN_HTTP_ANSWER, TLS_HANDSHAKE, looks_like_http

assert pki  # the fixture, imported for pytest


async def plain_exchange(port, raw, half_close=False):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    if half_close:
        writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 10)  # the server closes after its answer
    writer.transport.abort()
    return data


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_plain_http_request_on_the_tls_port_gets_a_400_that_says_so(pki):
    async def main():
        srv = await start(pki)
        try:
            data = await plain_exchange(srv.port, b"GET /x-nmos/node/v1.3/self HTTP/1.1\r\nHost: node\r\n\r\n")
            assert data == PLAIN_HTTP_ANSWER
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 ") and b"connection: close" in head
            assert b"TLS port" in body and b"https://" in body
            # a request whose head never ends: answered when the client stops sending
            assert await plain_exchange(srv.port, b"POST /x HTTP/1.1\r\nHost: n", half_close=True) == \
                PLAIN_HTTP_ANSWER
            # and TLS still works on the same port
            reader, writer = await open_tls(srv.port, pki)
            writer.write(b"GET /hello HTTP/1.1\r\nHost: node.test\r\n\r\n")
            head, _ = await read_response(reader)
            assert head.status == 200
            writer.transport.abort()
            assert await wait_for(lambda: srv.connection_count == 0)
        finally:
            await srv.shutdown(1)
    run(main())


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_with_http_url_on_the_tls_port_sees_the_400(pki):
    async def main():
        srv = await start(pki)
        try:
            proc = await asyncio.create_subprocess_exec(
                "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10",
                "http://127.0.0.1:%d/x-nmos/node/v1.3/" % srv.port,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 20)
            assert out.endswith(b"\n400") and b"use an https:// URL" in out, err
        finally:
            await srv.shutdown(1)
    run(main())


def test_sniffing_and_plain_answers_leak_no_descriptor(pki):
    async def main():
        srv = await start(pki, handshake_timeout=0.5)
        try:
            before = open_fds()
            for _ in range(20):
                await plain_exchange(srv.port, b"GET / HTTP/1.1\r\n\r\n")
            # silent clients: cut by the handshake deadline while their first bytes are awaited
            silent = [await open_from(srv.port, pki, "127.0.0.1", tls=False) for _ in range(3)]
            assert await wait_for(lambda: srv.connection_count == 0, 5)
            for _, w in silent:
                w.transport.abort()
            # clients that connect and leave at once
            for _ in range(10):
                _, w = await asyncio.open_connection("127.0.0.1", srv.port)
                w.transport.abort()
            assert await wait_for(lambda: srv.connection_count == 0)
            await asyncio.sleep(0.1)
            assert open_fds() <= before + 1
        finally:
            await srv.shutdown(1)
    run(main())


@pytest.mark.parametrize("first", [b"\x16\x03\x01\x02\x00", b"\x80\x2e\x01", b"", b"\x00", b"get / HTTP/1.1",
                                   b"\r\nGET"])
def test_what_is_not_a_request_line_goes_to_tls(first):
    assert not looks_like_http(first)


@pytest.mark.parametrize("first", [b"GET ", b"POST /", b"OPTIONS *", b"PRI * HTTP/2.0", b"CONNECT a:443"])
def test_request_lines_are_recognized(first):
    assert looks_like_http(first)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=16))
def test_a_tls_record_is_never_taken_for_http(rest):
    assert not looks_like_http(bytes([TLS_HANDSHAKE]) + rest)
    assert looks_like_http(rest) == (bool(rest) and b"A"[0] <= rest[0] <= b"Z"[0])


def test_hostile_first_bytes_never_break_the_listener(pki):
    """Garbage, a lone method byte, a huge plain head: each connection ends, the server serves on."""
    async def main():
        srv = await start(pki)
        try:
            for raw in (b"\x00" * 100, b"G", b"GET " + b"a" * 100000, b"\x16\x03\x01\x00\x05hello"):
                reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
                writer.write(raw)
                try:
                    writer.write_eof()
                    await asyncio.wait_for(reader.read(), 10)
                except (ConnectionResetError, BrokenPipeError):
                    pass
                writer.transport.abort()
            reader, writer = await open_tls(srv.port, pki)
            writer.write(b"GET /hello HTTP/1.1\r\nHost: node.test\r\n\r\n")
            assert (await read_response(reader))[0].status == 200
            writer.transport.abort()
        finally:
            await srv.shutdown(1)
    run(main())


async def _drip_handshake(port, ctx, chunk):
    """A TLS client over a raw socket that writes its records `chunk` bytes at a time, so the
    server's first read holds a piece of the ClientHello (or all of it, with the next record)."""
    import ssl

    from tls_helpers import SERVER_NAME

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=SERVER_NAME)

    async def flush():
        data = outgoing.read()
        for i in range(0, len(data), chunk):
            writer.write(data[i:i + chunk])
            await writer.drain()
            # a pause after the first piece, so the server's first read holds that piece alone
            await asyncio.sleep(0.05 if i == 0 else 0)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            await flush()
            data = await asyncio.wait_for(reader.read(65536), 10)
            assert data, "the server closed during the handshake"
            incoming.write(data)
    tls.write(b"GET /hello HTTP/1.1\r\nHost: node.test\r\nConnection: close\r\n\r\n")
    await flush()
    answer = b""
    while True:
        try:
            answer += tls.read(65536)
        except ssl.SSLWantReadError:
            data = await asyncio.wait_for(reader.read(65536), 10)
            if not data:
                break
            incoming.write(data)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
        if answer.startswith(b"HTTP/1.1 200") and b"\r\n\r\n" in answer:
            break
    writer.transport.abort()
    return answer


@pytest.mark.parametrize("chunk", [1, 5, 100000])
def test_the_first_bytes_read_are_the_start_of_the_handshake(pki, chunk):
    """The bytes read to tell TLS from plain HTTP are the TLS layer's first input, whole or in pieces:
    a ClientHello dripped one byte at a time completes, and so does one sent in one write."""
    async def main():
        srv = await start(pki)
        try:
            from tls_helpers import client_ssl

            answer = await _drip_handshake(srv.port, client_ssl(pki), chunk)
            assert answer.startswith(b"HTTP/1.1 200 ")
        finally:
            await srv.shutdown(1)
    run(main())


def test_no_second_descriptor_is_opened_to_tell_tls_from_http(pki):
    """Nothing is peeked through a duplicate of the socket: under qemu-user (the arm64 lane) a reader
    on a duplicate never fired and every handshake waited for the deadline."""
    import nmosauth_lite.aio.sniff as sniff

    assert "dup(" not in open(sniff.__file__).read() and "MSG_PEEK" not in open(sniff.__file__).read()
