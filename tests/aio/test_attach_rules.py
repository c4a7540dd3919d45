"""attach's admission rules (issue 19 §1, aio/attach_rules.py): pure, so tested as a table and
with hypothesis. Not an open proxy: any other host is 403; only IS-04 Registration API paths
and methods (and APIs named in the config) pass; paths are judged in canonical form (IS-10
RS-32) and that form is what is forwarded; the Node's own Authorization never leaves."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmosauth_lite.aio.attach_rules import (MAX_TARGET, admit, hold_seconds, host_of, is_resource_id,
                                            outbound_headers, split_target)
from nmosauth_lite.dnssd import AdvertError, parse_txt
from nmosauth_lite.registry_advert import parse_registry_advert

NODE = "3b8be755-08ff-452b-b217-c9151eb21193"
REG = "/x-nmos/registration/v1.3"
HOSTS = {"registry.studio.test", "127.0.0.1"}


def verdict(method, target, apis=("registration",)):
    return admit(method, target, HOSTS, apis)


@pytest.mark.parametrize("method,path", [
    ("POST", REG + "/resource"), ("POST", REG + "/resource/"),
    ("DELETE", REG + "/resource/nodes/" + NODE), ("GET", REG + "/resource/senders/" + NODE),
    ("HEAD", REG + "/resource/flows/" + NODE),
    ("POST", REG + "/health/nodes/" + NODE), ("GET", REG + "/health/nodes/" + NODE + "/"),
    ("GET", "/x-nmos"), ("GET", "/x-nmos/"), ("GET", "/x-nmos/registration/"), ("GET", REG),
    ("GET", REG + "/"), ("OPTIONS", REG + "/resource"), ("GET", "/x-nmos/registration/v1.0/"),
])
def test_forwards_the_registration_api_paths_and_methods_of_is04(method, path):
    v = verdict(method, path)
    assert v.status == 0, v
    assert v.target == path.rstrip("/") or v.target == path  # canonical; a trailing slash is kept as sent


@pytest.mark.parametrize("method,path,allow", [
    ("PUT", REG + "/resource", "POST, OPTIONS"), ("GET", REG + "/resource", "POST, OPTIONS"),
    ("DELETE", REG + "/health/nodes/" + NODE, "GET, HEAD, POST, OPTIONS"),
    ("POST", REG + "/resource/nodes/" + NODE, "GET, HEAD, DELETE, OPTIONS"),
    ("POST", "/x-nmos/registration/", "GET, HEAD, OPTIONS"), ("DELETE", REG, "GET, HEAD, OPTIONS"),
])
def test_other_methods_of_a_registration_path_get_405_with_allow(method, path, allow):
    v = verdict(method, path)
    assert (v.status, v.allow) == (405, allow)


@pytest.mark.parametrize("method,path", [
    ("GET", "/"), ("GET", "/admin"), ("GET", "/x-nmos/query/v1.3/nodes"), ("POST", "/x-nmos/node/v1.3/self"),
    ("GET", REG + "/resource/nodes"), ("GET", REG + "/resource/widgets/" + NODE),
    ("DELETE", REG + "/resource/nodes/not-a-uuid"), ("POST", REG + "/health/nodes/" + NODE + "/extra"),
    ("POST", REG + "/health/devices/" + NODE), ("GET", "/x-nmos/registration/latest/resource"),
    # dot segments and encoded ones are resolved before judging: none climbs to another API
    ("GET", REG + "/resource/../../../query/v1.3/nodes"), ("GET", REG + "/%2e%2e/%2E%2E/../query/v1.3/nodes"),
])
def test_paths_of_no_forwarded_api_are_refused_403(method, path):
    assert verdict(method, path).status == 403


def test_an_api_named_in_the_config_is_forwarded_with_its_methods():
    assert verdict("GET", "/x-nmos/query/v1.3/nodes", ("registration", "query")).status == 0
    assert verdict("POST", "/x-nmos/query/v1.3/subscriptions", ("registration", "query")).status == 0
    v = verdict("POST", "/x-nmos/query/v1.3/nodes", ("registration", "query"))
    assert (v.status, v.allow) == (405, "GET, HEAD, OPTIONS")
    assert verdict("PATCH", "/x-nmos/connection/v1.1/single/receivers/x/staged",
                   ("registration", "connection")).status == 0


@pytest.mark.parametrize("target", [
    "http://evil.example.com/x-nmos/registration/v1.3/resource", "https://evil.example.com:443/",
    "http://registry.studio.test@evil.example.com/x-nmos/registration/v1.3/resource",
    "http://evil.example.com#@registry.studio.test/", "evil.example.com:443", "registry.studio.test:443",
    "http://registry.studio.test.evil.example.com/x-nmos/registration/v1.3/resource",
])
def test_other_targets_get_403_never_forwarded(target):
    # issue 19 §1: not an open proxy (authority-form is CONNECT's tunnel: never, for any host)
    assert verdict("POST", target).status == 403


def test_absolute_form_naming_the_registry_or_us_is_forwarded_as_its_path():
    for target in ("http://registry.studio.test/x-nmos/registration/v1.3/resource",
                   "https://REGISTRY.studio.test.:8443/x-nmos/registration/v1.3/resource",
                   "http://127.0.0.1:8445/x-nmos/registration/v1.3/resource"):
        v = verdict("POST", target)
        assert (v.status, v.target) == (0, REG + "/resource")


def test_connect_trace_star_and_bad_scheme_are_refused():
    assert verdict("CONNECT", "registry.studio.test:443").status == 405
    assert verdict("TRACE", REG).status == 405
    assert verdict("OPTIONS", "*").status == 400
    assert verdict("GET", "ftp://registry.studio.test/x").status == 400
    assert verdict("GET", "/" + "a" * MAX_TARGET).status == 414
    assert verdict("POST", REG + "/resource%2Fnodes").status == 400  # an encoded '/' is never a separator
    assert verdict("GET", REG + "/\\..\\query").status == 400


def test_an_access_token_in_the_query_is_never_forwarded():
    v = verdict("GET", REG + "/health/nodes/" + NODE + "?access_token=node.own.token&x=1")
    assert v.status == 0 and v.target == REG + "/health/nodes/" + NODE + "?x=1"
    assert verdict("GET", REG + "?access_token=a.b.c").target == REG


def test_heartbeats_are_recognised_for_quiet_logging():
    assert verdict("POST", REG + "/health/nodes/" + NODE).heartbeat
    assert not verdict("POST", REG + "/resource").heartbeat


def test_outbound_headers_drop_the_nodes_authorization_hop_by_hop_and_forwarding_fields():
    fields = [(b"authorization", b"Bearer node-own"), (b"content-type", b"application/json"),
              (b"connection", b"keep-alive, x-secret"), (b"x-secret", b"1"), (b"proxy-authorization", b"Basic x"),
              (b"cookie", b"a=b"), (b"host", b"127.0.0.1"), (b"transfer-encoding", b"chunked"),
              (b"x-forwarded-for", b"10.0.0.1"), (b"accept", b"application/json"), (b"te", b"trailers")]
    assert outbound_headers(fields) == [(b"content-type", b"application/json"), (b"accept", b"application/json")]


def test_hold_seconds_is_bounded():
    assert hold_seconds(None) is None
    assert hold_seconds(0) == 1 and hold_seconds(3) == 3 and hold_seconds(86400) == 300


def test_host_of_and_resource_ids():
    assert host_of("[::1]:80") == "::1" and host_of("Reg.Test.:443") == "reg.test" and host_of("a@b") is None
    assert host_of("") is None and host_of("[::1") is None
    assert is_resource_id(NODE) and not is_resource_id(NODE + "0") and not is_resource_id("x" * 36)


@pytest.mark.parametrize("txt", [
    [b"api_proto=https", b"api_ver=v1.3", b"pri=10", b"api_auth=false"],  # BCP-003-02 BCP-N-06
    [b"api_proto=http", b"api_ver=v1.3", b"pri=10", b"api_auth=true"],  # tokens never over plain HTTP
    [b"api_proto=https", b"api_ver=v1.3", b"pri=10"],  # api_auth missing
    [b"api_proto=https", b"api_ver=1.3", b"pri=10", b"api_auth=true"],
    [b"api_proto=https", b"api_ver=" + b",".join([b"v1.0"] * 17), b"pri=10", b"api_auth=true"],
])
def test_registry_adverts_we_cannot_use_are_rejected(txt):
    with pytest.raises(AdvertError):
        parse_registry_advert(parse_txt(txt))


# --- properties ------------------------------------------------------------------------------
SEGMENT = st.sampled_from(["x-nmos", "registration", "query", "v1.3", "v1.0", "resource", "health", "nodes",
                           "devices", NODE, "..", ".", "", "%2e%2e", "%2F", "a", "v1", "%78-nmos", "resource?x=1",
                           "nodes?access_token=a.b.c", "x?y=1&access_token=q"])
METHOD = st.sampled_from(["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "TRACE", "FOO"])
PREFIX = st.sampled_from(["", "http://registry.studio.test", "http://evil.test", "https://127.0.0.1:1",
                          "http://a@registry.studio.test", "registry.studio.test:443", "*"])


@settings(max_examples=400, deadline=None)
@given(METHOD, PREFIX, st.lists(SEGMENT, max_size=9), st.booleans())
def test_admission_is_total_and_what_passes_is_canonical_and_registration_only(method, prefix, segs, slash):
    target = prefix + "/" + "/".join(segs) + ("/" if slash else "")
    if prefix == "*":
        target = "*"
    v = verdict(method, target)
    assert v.status in (0, 400, 403, 405, 414)
    if v.status == 0:
        path = v.target.split("?", 1)[0]
        assert path.startswith("/x-nmos") and "/../" not in path + "/" and "//" not in path and "/./" not in path
        assert prefix in ("", "http://registry.studio.test", "https://127.0.0.1:1")
        assert method not in ("CONNECT", "TRACE", "FOO")
        assert v.api in (None, "registration") and "access_token" not in v.target
        again = verdict(method, v.target)  # judged and forwarded are the same thing
        assert (again.status, again.target) == (0, v.target)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_admission_never_raises_on_any_target(text):
    v = verdict("GET", text)
    assert v.status in (0, 400, 403, 405, 414)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"authorization", b"Authorization", b"cookie", b"connection",
                                           b"proxy-x", b"x-a", b"host", b"accept"]),
                          st.binary(max_size=20)), max_size=12))
def test_outbound_headers_never_carry_the_nodes_credentials(fields):
    fields = [(n.lower(), v) for n, v in fields]  # the server hands names over lowercased
    out = outbound_headers(fields)
    assert not [n for n, _ in out if n in (b"authorization", b"cookie", b"host", b"connection") or
                n.startswith(b"proxy-")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_registry_txt_parsing_raises_only_advert_errors(strings):
    try:
        proto, vers, pri, auth = parse_registry_advert(parse_txt(strings))
    except AdvertError:
        return
    assert proto == "https" and auth is True and 0 <= pri < 100 and vers


# --- the IPMX profile (TR-10-SEC §6) ----------------------------------------------------------
@pytest.mark.parametrize("txt,ok", [
    ([b"api_proto=https", b"api_ver=v1.3", b"pri=10", b"api_auth=false"], True),  # SEC-76
    ([b"api_proto=https", b"api_ver=v1.3", b"pri=10", b"api_auth=true"], False),  # an IS-10 Registry
    ([b"api_proto=http", b"api_ver=v1.3", b"pri=10", b"api_auth=false"], False),  # RAP 0: never (SEC-80)
    ([b"api_proto=https", b"api_ver=v1.3", b"pri=10"], False),  # api_auth missing
])
def test_ipmx_registry_adverts_want_api_auth_false_over_https(txt, ok):
    if ok:
        assert parse_registry_advert(parse_txt(txt), False, False) == ("https", ["v1.3"], 10, False)
    else:
        with pytest.raises(AdvertError):
            parse_registry_advert(parse_txt(txt), False, False)


def _wrapped(inner):
    """A ClientError raised while handling `inner`, as aio/client.py raises them."""
    from nmosauth_lite.aio.client import ClientError

    try:
        try:
            raise inner
        except OSError as e:
            raise ClientError("connection failed: %s" % e) from e
    except ClientError as outer:
        return outer


def test_tls_failures_are_named_from_the_error_under_the_client_error():
    import ssl

    from nmosauth_lite.aio.attach import tls_cause

    alert = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    alert.reason = "TLSV1_ALERT_UNKNOWN_CA"
    assert tls_cause(_wrapped(alert)) == "the Registry refused attach's TLS client certificate (TLSV1_ALERT_UNKNOWN_CA)"
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message, verify.reason = "unable to get local issuer certificate", "CERTIFICATE_VERIFY_FAILED"
    assert tls_cause(_wrapped(verify)) == \
        "the Registry's certificate failed verification (unable to get local issuer certificate)"
    closed = _wrapped(ConnectionResetError("Connection lost"))
    assert tls_cause(closed) is None  # is-10: a closed connection is not named as TLS
    assert "may not accept attach's client certificate" in tls_cause(closed, rap=2)
    assert "may require a client certificate" in tls_cause(closed, rap=1)
    assert tls_cause(_wrapped(OSError("no route")), rap=2) is None
    from nmosauth_lite.aio.client import ClientConnectError

    try:  # the Registry is down: a refused connection says nothing about the certificate
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as e:
            raise ClientConnectError("connect to 127.0.0.1:1 failed: %s" % e)
    except ClientConnectError as down:
        assert tls_cause(down, rap=2) is None
