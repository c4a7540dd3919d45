"""Listen addresses and --connect overrides (aio/address.py; issue 22 items 3 and 7).

One reader for every listen address (protect, the AS, metrics, probe) below both aio/ and
commands/, and the HOST=ADDR override that lets a device reach an issuer its resolver cannot
resolve while TLS still verifies HOST (IS-10 CL-03, DS-13).
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmosauth_lite.aio.address import (MAX_ADDRESS, MAX_CONNECT_OVERRIDES, format_listen, parse_connect,
                                       parse_listen)
from nmosauth_lite.errors import ConfigError


@pytest.mark.parametrize("text,expect", [("0.0.0.0:8443", ("0.0.0.0", 8443)), ("[::1]:0", ("::1", 0)),
                                         ("gw.example.com:443", ("gw.example.com", 443)),
                                         (" 127.0.0.1:8444 ", ("127.0.0.1", 8444))])
def test_parse_listen(text, expect):
    assert parse_listen(text) == expect


@pytest.mark.parametrize("bad", ["8443", ":80", "host:99999", "[::1]80", "host:x", "[::1", "a b:80",
                                 "host:+80", "host:٣", "h:" + "1" * 50, "x" * (MAX_ADDRESS + 1) + ":80", ""])
def test_parse_listen_refuses_malformed(bad):
    with pytest.raises(ConfigError):
        parse_listen(bad)


def test_format_listen_brackets_ipv6_only():
    assert format_listen("::1", 80) == "[::1]:80"
    assert format_listen("127.0.0.1", 80) == "127.0.0.1:80"
    assert parse_listen(format_listen("::", 8443)) == ("::", 8443)


def test_metrics_and_protect_share_the_one_parser():
    """issue 22 item 7: aio/ never imports commands/ for it."""
    import nmosauth_lite.aio.metrics as metrics
    import nmosauth_lite.authserver.config as as_config
    import nmosauth_lite.commands.protect as protect

    src = open(metrics.__file__, encoding="utf-8").read()
    assert "commands" not in src.replace("not commands/", "")
    assert protect.parse_listen is parse_listen and as_config.parse_listen is parse_listen


def test_parse_connect_maps_names_to_addresses():
    got = parse_connect(["Auth.Example.com.=192.0.2.10", "as2.example.com=[2001:db8::1]", "x.test=other.lan"])
    assert got == {"auth.example.com": "192.0.2.10", "as2.example.com": "2001:db8::1", "x.test": "other.lan"}
    assert parse_connect(None) == {}
    assert parse_connect(["a.test=192.0.2.1", "a.test=192.0.2.1"]) == {"a.test": "192.0.2.1"}


@pytest.mark.parametrize("bad", ["auth.example.com", "=192.0.2.1", "auth.example.com=", "a b=192.0.2.1",
                                 "auth=192.0.2.1 x", "-bad.test=192.0.2.1", "a..b=192.0.2.1",
                                 "h=" + "x" * MAX_ADDRESS, "a.test=1.2.3", "a.test=10.0.0.256", "münchen.test=192.0.2.1", "a.test=http://x/"])
def test_parse_connect_refuses_malformed(bad):
    with pytest.raises(ConfigError):
        parse_connect([bad])


def test_parse_connect_refuses_conflicts_and_floods():
    with pytest.raises(ConfigError):
        parse_connect(["a.test=192.0.2.1", "A.TEST=192.0.2.2"])
    with pytest.raises(ConfigError):
        parse_connect(["h%d.test=192.0.2.1" % i for i in range(MAX_CONNECT_OVERRIDES + 1)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_parse_listen_any_text_gives_a_pair_or_config_error(text):
    try:
        host, port = parse_listen(text)
    except ConfigError:
        return
    assert 0 <= port <= 65535 and host and " " not in host


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=80), max_size=5))
def test_parse_connect_any_text_gives_a_map_or_config_error(values):
    try:
        got = parse_connect(values)
    except ConfigError:
        return
    for host, addr in got.items():
        assert host == host.lower() and not host.endswith(".") and addr and "=" not in addr
