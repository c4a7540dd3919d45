"""The shared admission policy (issue 23): address groups, fair share per group, eviction."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite.aio.admission import FairTable, Grouping, default_per_group


def test_ipv4_addresses_are_groups_of_one_by_default_and_of_a_slash_24_when_configured():
    assert Grouping().group("192.0.2.7") == "192.0.2.7"
    g = Grouping(v4_prefix=24)
    assert g.group("192.0.2.7") == g.group("192.0.2.200") == "192.0.2.0/24"
    assert g.group("192.0.3.7") != g.group("192.0.2.7")


def test_ipv6_addresses_are_counted_per_slash_64_not_one_by_one():
    g = Grouping()
    a = g.group("2001:db8:1:2::1")
    assert a == g.group("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert g.group("2001:db8:1:3::1") != a
    assert g.group("fe80::1%eth0") == g.group("fe80::2")  # the scope id is not part of the address
    assert g.group("::ffff:192.0.2.7") == "192.0.2.7"  # a v4-mapped address is its IPv4 address


def test_unparsable_or_missing_addresses_still_get_a_bounded_group():
    g = Grouping(v4_prefix=24)
    assert g.group(None) == "-"
    assert len(g.group("x" * 500)) <= 64


def test_grouping_refuses_prefixes_it_does_not_support():
    with pytest.raises(ValueError):
        Grouping(v4_prefix=16)
    with pytest.raises(ValueError):
        Grouping(v6_prefix=8)


def test_a_flood_from_one_group_displaces_itself_at_its_share():
    t = FairTable(100, per_group=5)
    for i in range(50):
        ok, victim = t.admit(("flood", i), "10.0.0.1", now=i)
        assert ok
        if i >= 5:
            assert victim == ("flood", i - 5)  # its own oldest
    assert t.count("10.0.0.1") == 5 and len(t) == 5


def test_a_full_table_makes_room_for_a_newcomer_from_the_largest_group():
    t = FairTable(20, per_group=10)
    for a in range(4):  # four attacker groups, 5 each: full
        for i in range(5):
            t.admit((a, i), "10.0.0.%d" % a, now=a * 10 + i)
    assert t.full()
    ok, victim = t.admit("legit", "192.0.2.1", now=100)
    assert ok and victim is not None and victim[0] in range(4) and victim != "legit"
    assert t.count("192.0.2.1") == 1 and len(t) == 20
    # the attackers coming back only displace each other, never the legitimate entry
    for i in range(200):
        ok, victim = t.admit(("again", i), "10.0.0.%d" % (i % 4), now=200 + i)
        assert victim != "legit"
    assert t.count("192.0.2.1") == 1


def test_entries_ranked_none_are_never_evicted():
    t = FairTable(2, per_group=2)
    t.admit("busy1", "a", now=0)
    t.admit("busy2", "a", now=1)
    ok, victim = t.admit("new", "b", now=2, rank=lambda e, since: None)
    assert not ok and victim is None and len(t) == 2


def test_the_slowest_holder_goes_first_when_a_rank_says_so():
    t = FairTable(3, per_group=3)
    for name in ("fast", "slow", "mid"):
        t.admit(name, "a", now=0)
    speed = {"fast": 3, "slow": 1, "mid": 2}
    ok, victim = t.admit("new", "b", now=1, rank=lambda e, since: speed[e])
    assert ok and victim == "slow"


def test_default_share_is_an_eighth_with_a_floor():
    assert default_per_group(512) == 64 and default_per_group(8) == 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.booleans()), max_size=300), st.integers(1, 30), st.integers(1, 10))
def test_table_never_exceeds_its_ceiling_or_a_groups_share(ops, capacity, per_group):
    t = FairTable(capacity, per_group)
    held = {}
    n = 0
    for group, leave in ops:
        g = "g%d" % group
        if leave and held.get(g):
            t.remove(held[g].pop(0), g)
            continue
        n += 1
        ok, victim = t.admit(n, g, now=n)
        if victim is not None:
            for entries in held.values():
                if victim in entries:
                    entries.remove(victim)
        if ok:
            held.setdefault(g, []).append(n)
        assert len(t) <= capacity and all(t.count(x) <= per_group for x in held)
        assert len(t) == sum(len(v) for v in held.values())
        if ok and victim is not None:
            # a newcomer never displaces a group smaller than its own
            assert any(victim in v for v in held.values()) is False


def test_two_floods_never_trade_places_and_a_refusal_evicts_nothing():
    t = FairTable(20, per_group=10)
    for i in range(10):
        t.admit(("a", i), "a", now=i)
        t.admit(("b", i), "b", now=i)
    t.remove(("b", 0), "b")
    t.admit(("c", 0), "c", now=50)  # full again: a 10, b 9, c 1
    ok, victim = t.admit(("b", 99), "b", now=99, own_when_full=False)
    assert not ok and victim is None and t.count("a") == 10  # 9 vs 10: no trade (two writes for nothing)
    ok, victim = t.admit(("d", 0), "d", now=100, own_when_full=False)
    assert ok and victim[0] == "a"  # a newcomer from elsewhere still gets in
