"""Finding a configured issuer's metadata: the one discovery the key store and the client share.

Servers publish RFC 8414 metadata in one of three places (issuer.metadata_urls):
the RFC 8414 §3.1 form first, then the segment appended to the issuer (Keycloak),
then OpenID Connect Discovery's `openid-configuration` (OIDC-only servers). Each
answer must name the configured issuer exactly (RFC 8414 §3.3, OIDC Discovery
§4.3); a 4xx, a body that is not metadata, or a document of another issuer means
"not here", and the next place is tried. A 5xx or a transport error ends the
search: the server is in trouble, and the caller fails over or retries later.
The place that answered is remembered by the caller and tried first next time.
"""

import logging

from .. import jsonshim
from ..errors import RemoteError
from ..issuer import MAX_METADATA_BYTES, check_metadata

log = logging.getLogger("nmosauth_lite.metadata")


class Found:
    """A metadata document and where it came from (form: one of issuer.METADATA_FORMS)."""

    def __init__(self, doc, form, url):
        self.doc = doc
        self.form = form
        self.url = url


def ordered(urls, preferred=None):
    """`urls` ([(form, url)]) with the one at `preferred` (a URL that answered before) first."""
    first = [u for u in urls if u[1] == preferred]
    return first + [u for u in urls if u[1] != preferred]


async def find_metadata(get, issuer, urls, allow_http=False, loose=False, max_bytes=MAX_METADATA_BYTES):
    """Fetch and check `issuer`'s metadata from the first of `urls` that has it; returns Found.

    `get(url)` is an async GET returning a response with `status` and `body` (bytes);
    what it raises (transport errors, the caller's own "unavailable") passes through.
    Raises RemoteError when the server errs (5xx) or no place holds this issuer's metadata.
    """
    misses = []
    for form, url in urls:
        resp = await get(url)
        if resp.status >= 500:
            raise RemoteError("metadata %s: HTTP %d" % (url, resp.status))
        if resp.status != 200:
            misses.append("%s HTTP %d" % (form, resp.status))
            continue
        if len(resp.body) > max_bytes:
            misses.append("%s too large" % form)
            continue
        try:
            doc = jsonshim.loads(resp.body)
        except ValueError:
            misses.append("%s not JSON" % form)
            continue
        try:
            check_metadata(doc, issuer, allow_http, loose)
        except RemoteError as e:
            misses.append("%s: %s" % (form, e.message))
            continue
        if misses:
            log.debug("metadata for %s: %s", issuer, "; ".join(misses))
        return Found(doc, form, url)
    raise RemoteError("no metadata for %s (%s)" % (issuer[:120], "; ".join(misses)[:300]))


def note_form(issuer, previous_url, found):
    """Log (INFO) which form answered for `issuer` when it is new or changed; True if it was."""
    if found.url == previous_url:
        return False
    log.info("issuer %s: metadata from %s (%s form)", issuer, found.url, found.form)
    return True
