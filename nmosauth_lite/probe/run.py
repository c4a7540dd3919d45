"""The asyncio runner of `nmosauth-lite probe`: sends each Check's request, feeds the judge.

One TLS connection per request (`Connection: close`), certificate and host name verified
(IS-10 GEN-01; the Node's CA from --ca), responses framed by our http11 parser with a size
cap, each exchange bounded in time. A judge's Retry(s) is honoured by sleeping (bounded by
checks.MAX_RETRY_WAIT) and sending the request again. WebSocket handshakes stop at the 101.
"""

import asyncio
import urllib.parse

from ..aio.closing import abort
from ..http11 import CLOSED, NEED_DATA, Data, EndOfMessage, HTTPError, ResponseParser, build_request_head
from .checks import Result
from .judges import FAIL, PASS, Answer, Retry, diagnose


MAX_RESPONSE_BYTES = 1 << 20
DEFAULT_TIMEOUT = 10.0


class Target:
    """Where the Node is: https://host:port (a path prefix is kept); `connect` overrides the address."""

    def __init__(self, url, ssl_context, connect=None, timeout=DEFAULT_TIMEOUT):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("the Node URL must be https://HOST[:PORT] (IS-10 GEN-01)")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.prefix = parts.path.rstrip("/")
        self.ssl = ssl_context
        self.connect = connect or self.host
        self.timeout = timeout
        name = "[%s]" % self.host if ":" in self.host else self.host
        self.host_header = name if self.port == 443 else "%s:%d" % (name, self.port)

    async def send(self, request):
        return await asyncio.wait_for(self._send(request), self.timeout)

    async def _send(self, request):
        reader, writer = await asyncio.open_connection(self.connect, self.port, ssl=self.ssl,
                                                       server_hostname=self.host)
        try:
            headers = [("Host", self.host_header), ("Connection", "close"), ("User-Agent", "nmosauth-lite-probe")]
            names = set(n.lower() for n, _ in request.headers)
            if "connection" in names:
                headers = [h for h in headers if h[0] != "Connection"]
            headers += request.headers
            if request.body is not None:
                headers.append(("Content-Length", str(len(request.body))))
            raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
            writer.write(build_request_head(request.method, self.prefix + request.path, raw) + (request.body or b""))
            await writer.drain()
            return await read_answer(reader, request.method)
        finally:
            abort(writer)  # nothing more to say; also ends a WebSocket after its 101


async def read_answer(reader, method):
    """One HTTP/1.1 answer off `reader` (a 101 ends it): Answer(status, {lower-case name: value}, body)."""
    parser = ResponseParser(MAX_RESPONSE_BYTES)
    parser.start(method)
    head, body = None, []
    while True:
        event = parser.next_event()
        if event is NEED_DATA:
            data = await reader.read(65536)
            if data:
                parser.feed(data)
            else:
                parser.feed_eof()
        elif event.__class__ is Data:
            body.append(event.data)
        elif event.__class__ is EndOfMessage:
            break
        elif event is CLOSED:
            raise ConnectionResetError("connection closed before an answer")
        elif event.status >= 200 or event.status == 101:
            head = event
            if event.status == 101:
                break
    fields = {}
    for n, v in head.headers:
        name = n.decode("latin-1").lower()
        value = v.decode("latin-1")
        fields[name] = value if name not in fields else fields[name] + ", " + value
    return Answer(head.status, fields, b"".join(body))


async def run_checks(target, checks, issuer=None, progress=None, context=None):
    """[Result] in check order. `issuer.publish_unseen()` is called for checks that need it.
    A result that did not pass carries judges.diagnose's likely cause (`context`: issuer,
    ca_file, jwks_file, audience of this run)."""
    results = []
    for check in checks:
        if check.needs == "new_key" and issuer is not None:
            issuer.publish_unseen()
        answers = []
        while True:
            try:
                answers.append(await target.send(check.request))
            except (OSError, HTTPError, asyncio.TimeoutError, ValueError) as e:
                verdict, got = FAIL, "no answer: %s" % (_reason(e),)
                break
            out = check.judge(answers)
            if isinstance(out, Retry):
                await asyncio.sleep(out.delay)
                continue
            verdict, got = out
            break
        hint = diagnose(check.id, answers[-1], context) if verdict != PASS and answers else None
        result = Result(check, verdict, got, hint)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def _reason(e):
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    text = getattr(e, "message", None) or getattr(e, "strerror", None) or str(e) or type(e).__name__
    return text[:120]
