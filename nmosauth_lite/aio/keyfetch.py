"""Fetching an issuer's keys from its servers, for the key store (IS-10 RS-01..RS-04, RS-11).

Mixed into aio.keystore.KeyStore, like aio/discovered.py: `Server` is one place an issuer's
keys can be fetched; `_refresh_issuer` tries each server of an issuer in turn and records the
outcome in its jwks_cache.IssuerKeys; `_fetch_from` reads the RFC 8414 metadata when needed
(aio/metadata.py), then the JWKS with If-None-Match, and persists what it got (aio/keyfiles.py).
Under the IPMX profile the fetch uses the IPMX TLS suites (SEC-58, SEC-83..SEC-85). Uses the
store's `_issuers`, `_servers`, `_clients`, `profile`, `files`, `warn`, `ca_file`, `insecure_http`,
`fetch_timeout`, `_priming`, `_running`, `_clock`, `_rng`; counts `fetch_count`, `fetch_failures`.
"""

import asyncio
import logging

from .. import jsonshim
from ..errors import KeyFormatError, NmosAuthError, RemoteError
from ..issuer import MAX_METADATA_BYTES, metadata_urls
from .client import HTTPClient
from .keyfiles import MAX_JWKS_BYTES
from .metadata import find_metadata, note_form, ordered

log = logging.getLogger("nmosauth_lite.keys")


class Server:
    """One place an issuer's keys can be fetched: its metadata URL, and how to reach it.

    `resolve` maps host names to addresses (DNS-SD answers: connect there, keep the
    name for TLS and Host); `loose` compares the metadata's issuer per IS-10 DS-14.
    `urls` ([(form, url)], aio/metadata.py) are the places tried in turn; by default
    `metadata_url` alone (a DNS-SD advert's URL, IS-10 DS-06). for_issuer() gives a
    configured issuer all three forms.
    """

    def __init__(self, metadata_url, resolve=None, loose=False, urls=None):
        self.metadata_url = metadata_url
        self.resolve = dict(resolve or {})
        self.loose = loose
        self.urls = list(urls) if urls else [("rfc8414", metadata_url)]

    @classmethod
    def for_issuer(cls, issuer, resolve=None):
        urls = metadata_urls(issuer)
        return cls(urls[0][1], resolve=resolve, urls=urls)


class KeyFetcher:
    def _client(self, server):
        key = tuple(sorted(server.resolve.items()))
        c = self._clients.get(key)
        if c is None:
            ssl_context = None
            if self.profile.name == "ipmx":  # SEC-58, SEC-83..SEC-85: the IPMX suites for key fetches too
                from .tlsutil import client_context

                ssl_context = client_context(self.ca_file, policy="ipmx")
            c = HTTPClient(ca_file=self.ca_file, ssl_context=ssl_context, insecure_http=self.insecure_http,
                           resolve=server.resolve,
                           connect_timeout=self.fetch_timeout, read_timeout=self.fetch_timeout,
                           max_response=max(MAX_JWKS_BYTES, MAX_METADATA_BYTES))
            self._clients[key] = c
        return c

    async def _refresh_issuer(self, iss):
        state = self._issuers[iss]
        errors = []
        for server in self._servers[iss]:
            try:
                await asyncio.wait_for(self._fetch_from(state, server), self.fetch_timeout * 2)
                for key in (("fetch", iss, server.metadata_url), ("none", iss), ("prime", iss)):
                    self.warn.forget(key)  # over: a new failure is worth a line at once
                return
            except (NmosAuthError, asyncio.TimeoutError, OSError) as e:
                reason = str(e) or type(e).__name__
                errors.append(reason)
                self.warn.warning(("fetch", iss, server.metadata_url), "key fetch for %s from %s failed: %s", iss,
                                  server.metadata_url, reason)
        self.fetch_failures += 1
        reason = "; ".join(errors)[:300]
        if self._priming:  # prime() retries on its own schedule and logs that
            state.last_error = reason
            return
        delay = state.fetch_failed(self._clock(), self._rng, reason)
        if self._running:
            self.warn.warning(("none", iss), "no server answered for %s; keeping %d keys, next try in %.0f s", iss,
                              len(state.keys), delay)
        else:  # a one-shot command: nothing will try again
            log.warning("no server answered for %s; keeping %d keys", iss, len(state.keys))

    async def _fetch_from(self, state, server):
        client = self._client(server)
        self.fetch_count += 1
        jwks_uri = state.jwks_uri
        if jwks_uri is None or state.failures:
            async def get(url):
                return await client.get(url, headers=[("accept", "application/json")])

            found = await find_metadata(get, state.issuer, ordered(server.urls, state.metadata_url),
                                        self.insecure_http, server.loose)
            note_form(state.issuer, state.metadata_url, found)
            state.metadata_form, state.metadata_url = found.form, found.url
            jwks_uri = found.doc["jwks_uri"]
        headers = [("accept", "application/json")]
        if state.etag and jwks_uri == state.jwks_uri:
            headers.append(("if-none-match", state.etag))
        resp = await client.get(jwks_uri, headers=headers)
        now = self._clock()
        if resp.status == 304 and state.etag:
            state.not_modified(now, self._rng)
            self.files.save(state)
            return
        if resp.status != 200:
            raise RemoteError("JWKS: HTTP %d" % resp.status)
        try:
            added, withdrawn = state.apply(_json(resp.body, "JWKS"), now, self._rng, resp.header("etag"), jwks_uri)
        except KeyFormatError as e:
            raise RemoteError("JWKS unusable: %s" % e.message)
        for k in withdrawn:
            log.warning("issuer %s withdrew key %s: its tokens are refused from now on", state.issuer, k.kid or k.thumbprint)
        for k in added:
            log.info("issuer %s: new key %s", state.issuer, k.kid or k.thumbprint)
        if self.profile.key_max_age is not None:
            log.info("issuer %s: %d keys obtained", state.issuer, len(state.keys))  # SEC-56 SHOULD
        self.files.save(state)


def _json(body, what):
    try:
        return jsonshim.loads(body)
    except ValueError:
        raise RemoteError("%s is not JSON" % what)
