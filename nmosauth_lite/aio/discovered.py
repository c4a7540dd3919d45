"""Issuers found by unicast DNS-SD, for the key store (IS-10 RS-43, DS-05, DS-14; issue 22 item 3).

Mixed into aio.keystore.KeyStore: an advert (dnssd.AuthServer) becomes a trusted issuer once
its RFC 8414 metadata, read at the advertised address while TLS, SNI and Host keep the
advertised name, names an issuer that fits the advert. `discover_once` trusts what one DNS-SD
pass lists; `follow_discovery` repeats it (jittered). Operator overrides (`resolve`, from
--connect) win over the advertised addresses. Uses the store's `_client`, `add_issuer`,
`fetch_timeout`, `insecure_http`, `resolve`, `warn`, `_rng`.
"""

import asyncio
import logging

from .. import jsonshim
from ..errors import NmosAuthError, RemoteError
from ..issuer import check_metadata

log = logging.getLogger("nmosauth_lite.keys")


class DiscoveredIssuers:
    def _init_discovery(self):
        self._discovered = set()  # issuers trusted because DNS-SD advertised them
        self._adverts_seen = set()  # metadata URLs of adverts already trusted

    async def add_discovered(self, advert):
        """Trust the issuer a DNS-SD advert (dnssd.AuthServer) leads to (IS-10 RS-43, DS-05).

        Its metadata is read at the advertised address while TLS, SNI and Host use
        the advertised name; the document's issuer must fit the advert (DS-14).
        That name -> address map serves every later fetch for this issuer.
        """
        host = advert.host.rstrip(".").lower()
        resolve = {host: advert.addresses[0]} if advert.addresses else {}
        resolve.update(self.resolve)
        server = self.server_class(advert.metadata_url, resolve=resolve, loose=True)
        expected = "%s://%s:%d%s" % (advert.api_proto, host, advert.port,
                                     "/" + advert.api_selector if advert.api_selector else "")
        resp = await asyncio.wait_for(self._client(server).get(server.metadata_url, headers=[("accept", "application/json")]),
                                      self.fetch_timeout * 2)
        self.fetch_count += 1
        if resp.status != 200:
            raise RemoteError("metadata: HTTP %d" % resp.status)
        doc = check_metadata(_metadata_json(resp.body), expected, self.insecure_http, loose=True)
        iss = doc["issuer"]
        state = self.add_issuer(iss, servers=[server])
        if state.jwks_uri is None:
            state.jwks_uri = doc["jwks_uri"]
        if state.metadata_url is None:
            state.metadata_form, state.metadata_url = "rfc8414", advert.metadata_url  # IS-10 DS-06
        return iss

    async def follow_discovery(self, cache, interval=60.0):
        """Keep trusting what DNS-SD advertises: `cache` is an aio.dns.DiscoveryCache
        (re-queried as records expire); servers that fail are marked so for a while."""
        while True:
            await self.discover_once(cache)
            await asyncio.sleep(interval * (0.75 + 0.5 * self._rng()))  # jittered: Nodes do not ask in step

    async def discover_once(self, cache):
        """One pass of follow_discovery: trust every advert not seen before whose metadata
        checks out. Returns the issuers trusted so far this way."""
        known = self._adverts_seen
        try:
            adverts = await cache.get()
        except (NmosAuthError, OSError) as e:
            self.warn.warning("dns-sd", "DNS-SD discovery failed: %s", e)
            adverts = []
        for adv in adverts:
            if adv.metadata_url in known:
                continue
            try:
                iss = await self.add_discovered(adv)
                known.add(adv.metadata_url)
                self._discovered.add(iss)
                log.info("trusting discovered issuer %s (%s)", iss, adv.instance)
            except (NmosAuthError, OSError, asyncio.TimeoutError) as e:
                self.warn.warning(("advert", adv.metadata_url), "discovered server %s unusable: %s",
                                  adv.metadata_url, e)
                cache.mark_failed(adv)
        return self.discovered

    @property
    def discovered(self):
        """The issuers trusted because DNS-SD advertised them, sorted."""
        return sorted(self._discovered)



def _metadata_json(body):
    try:
        return jsonshim.loads(body)
    except ValueError:
        raise RemoteError("metadata is not JSON")
