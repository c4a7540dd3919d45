"""attach's choice of Registry (aio/attach.py Registries), without I/O: configured URLs checked
(https only, no path: BCP-003-01), the order kept, failed Registries at the back for a while, the
one that last answered first while it works (IS-04: a Node stays with its Registry), Retry-After
holds bounded. A property test drives random successes and failures."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite.aio.attach import Registries, parse_registry_url
from nmosauth_lite.errors import ConfigError

URLS = ["https://reg-a.test:3210", "https://reg-b.test", "https://[2001:db8::1]:8443/"]


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def order(regs, version=None):
    return [r.host for r in asyncio.run(regs.candidates(version))]


@pytest.mark.parametrize("url", ["http://reg.test", "https://reg.test/x-nmos", "https://u@reg.test",
                                 "https://reg.test?x=1", "https://reg.test:99999", "ftp://reg.test", "https://"])
def test_configured_registry_urls_are_https_origins_only(url):
    with pytest.raises(ConfigError):
        parse_registry_url(url)


def test_parsed_registry_bases_and_any_version():
    regs = [parse_registry_url(u) for u in URLS]
    assert [r.base for r in regs] == ["https://reg-a.test:3210", "https://reg-b.test:443", "https://[2001:db8::1]:8443"]
    assert all(r.offers("v1.3") and r.offers(None) for r in regs)


def test_failed_go_to_the_back_and_the_working_one_stays_first():
    clock = Clock()
    regs = Registries(URLS, clock=clock, failed_hold=60)
    assert order(regs) == ["reg-a.test", "reg-b.test", "2001:db8::1"]
    a, b, c = regs.static
    regs.mark_failed(a)
    assert order(regs) == ["reg-b.test", "2001:db8::1", "reg-a.test"]
    regs.mark_good(c)  # c answered: it stays first while it works, though a is back
    clock.t += 61
    assert order(regs) == ["2001:db8::1", "reg-a.test", "reg-b.test"]
    regs.mark_failed(c)
    assert order(regs) == ["reg-a.test", "reg-b.test", "2001:db8::1"]


def test_retry_after_holds_expire():
    clock = Clock()
    regs = Registries(URLS[:1], clock=clock)
    reg = regs.static[0]
    regs.hold(reg, 3)
    assert regs.held(reg) == (3, 3)
    clock.t += 2.5
    assert regs.held(reg) == (0.5, 3)
    clock.t += 1
    assert regs.held(reg) is None


def test_nothing_to_forward_to_is_a_configuration_error():
    with pytest.raises(ConfigError):
        Registries()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans(), st.integers(0, 90)), max_size=30))
def test_candidates_are_always_every_registry_once_with_failed_ones_last(events):
    clock = Clock()
    regs = Registries(URLS, clock=clock, failed_hold=60)
    failed_until = {}
    for index, ok, wait in events:
        reg = regs.static[index]
        if ok:
            regs.mark_good(reg)
            failed_until.pop(reg.host, None)
        else:
            regs.mark_failed(reg)
            failed_until[reg.host] = clock.t + 60
        clock.t += wait
        got = order(regs)
        assert sorted(got) == sorted(r.host for r in regs.static)
        failed = [h for h in got if failed_until.get(h, 0) > clock.t]
        assert got[len(got) - len(failed):] == failed  # failed ones, and only they, at the back
