"""50 concurrent clients on the token endpoint for a bounded time: no error, no lost or duplicated
refresh token (IS-10 AS-45 rotation under load).

Each client holds its own keep-alive TLS connection (aiohttp, a third-party client) and
alternates refresh_token grants (rotating its own refresh-token family) with
client_credentials grants. The duration defaults to 5 s so the CI run stays under 10 s;
the issue's figure is 30 s: NMOSAUTH_AS_SOAK_SECONDS=30 pytest tests/authserver -k concurrency.
"""

import asyncio
import os
import secrets
import ssl
import time

from as_support import ASThread, as_pki, basic, server_table  # noqa: F401
from nmosauth_lite.authserver.store import digest

CLIENTS = 50
SOAK_SECONDS = float(os.environ.get("NMOSAUTH_AS_SOAK_SECONDS", "5"))


async def _worker(url, ctx, client, rt, stop_at, log):
    import aiohttp

    headers = {"Authorization": basic(client["client_id"], client["client_secret"])}
    conn = aiohttp.TCPConnector(ssl=ctx, limit=1)
    timeout = aiohttp.ClientTimeout(total=30)
    issued = [rt]
    counts = {"refresh": 0, "client_credentials": 0, "errors": []}
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
        i = 0
        while time.monotonic() < stop_at:
            if i % 2 == 0:
                form = {"grant_type": "refresh_token", "refresh_token": issued[-1]}
            else:
                form = {"grant_type": "client_credentials", "scope": "registration"}
            async with s.post(url, data=form, headers=headers) as resp:
                body = await resp.json()
                if resp.status != 200:
                    counts["errors"].append((resp.status, body))
                    break
                if "refresh_token" in body:
                    issued.append(body["refresh_token"])
                    counts["refresh"] += 1
                else:
                    counts["client_credentials"] += 1
            i += 1
    log.append((client, issued, counts))


async def _load(srv, clients, seconds):
    ctx = ssl.create_default_context(cafile=srv.ca_file)
    stop_at = time.monotonic() + seconds
    log = []
    await asyncio.gather(*(_worker(srv.metadata["token_endpoint"], ctx, c, rt, stop_at, log) for c, rt in clients))
    return log


def test_fifty_clients_refresh_and_get_tokens_concurrently(tmp_path, as_pki):
    with ASThread(server_table(as_pki), str(tmp_path)) as srv:
        clients = []
        s = srv.store()
        for n in range(CLIENTS):
            c = srv.add_client(grants=["authorization_code", "client_credentials", "refresh_token"],
                               scope="registration query", redirect_uris=["https://c.example.com/cb"],
                               name="load client %d" % n)
            rt = secrets.token_urlsafe(48)
            now = time.time()
            with s.transaction():  # what a completed authorization code flow leaves behind
                s.add_family("family-%d" % n, client_id=c["client_id"], sub="user%d" % n, now=now,
                             expires_at=now + 86400)
                s.add_refresh(digest(rt), family_id="family-%d" % n, client_id=c["client_id"], sub="user%d" % n,
                              scope="registration query", now=now, expires_at=now + 3600)
            clients.append((c, rt))
        started = time.monotonic()
        log = asyncio.run(_load(srv, clients, SOAK_SECONDS))
        elapsed = time.monotonic() - started
        assert len(log) == CLIENTS
        errors = [(c["client_id"], counts["errors"]) for c, _, counts in log if counts["errors"]]
        assert not errors, errors[:3]
        every = [rt for _, issued, _ in log for rt in issued]
        assert len(every) == len(set(every)), "a refresh token was issued twice"
        total = 0
        for c, issued, counts in log:
            fam = s.find_refresh(digest(issued[0]))["family_id"]
            rows = s.db.execute("SELECT token_hash, rotated_at FROM refresh_tokens WHERE family_id=?",
                                (fam,)).fetchall()
            live = [r["token_hash"] for r in rows if r["rotated_at"] is None]
            # nothing lost: every token we received is stored, exactly one is live and it is the last one
            assert {r["token_hash"] for r in rows} == {digest(t) for t in issued}
            assert live == [digest(issued[-1])]
            assert s.get_family(fam)["revoked_at"] is None
            total += counts["refresh"] + counts["client_credentials"]
            assert counts["refresh"] >= 1 and counts["client_credentials"] >= 1
        audited = s.db.execute("SELECT count(*) FROM audit WHERE event IN ('token.refresh', "
                               "'token.client_credentials')").fetchone()[0]
        assert audited == total  # AS-50: every grant and refresh is in the log
        s.close()
        print("\n%d token requests from %d clients in %.1f s (%.0f/s)" % (total, CLIENTS, elapsed, total / elapsed))
