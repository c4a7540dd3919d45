"""`discover` finding nothing says why on stderr (issue 12 §2): what was asked, of which
server, and what came back (NXDOMAIN, no PTR, no answer, each instance filtered and why),
against the real dnsmasq the discovery tests use. IS-10 DS-01 (PTR _nmos-auth._tcp),
DS-07 (api_proto), DS-09 (pri >= 100 development only), DS-12 (api_ver)."""

import json
import os
import subprocess
import sys

import pytest

from dns_helpers import Dnsmasq, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVC = "_nmos-auth._tcp"


def _instance(domain, label, port, txt):
    name = "%s.%s.%s" % (label, SVC, domain)
    return ['ptr-record=%s.%s,"%s"' % (SVC, domain, name), "srv-host=%s,h.%s,%d,0,0" % (name, domain, port),
            "txt-record=%s,%s" % (name, ",".join('"%s"' % t for t in txt))]


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory):
    lines = ['txt-record=%s.noptr.test,"not a service list"' % SVC, "host-record=h.filt.test,192.0.2.9",
             "host-record=h.ok.test,192.0.2.10"]
    lines += _instance("filt.test", "as-dev", 443, ["api_proto=https", "api_ver=v1.0", "pri=100"])
    lines += _instance("filt.test", "as-plain", 80, ["api_proto=http", "api_ver=v1.0", "pri=1"])
    lines += _instance("filt.test", "as-future", 443, ["api_proto=https", "api_ver=v2.0", "pri=1"])
    lines += _instance("ok.test", "as-ok", 443, ["api_proto=https", "api_ver=v1.0", "pri=1"])
    server = Dnsmasq(tmp_path_factory.mktemp("dnsmasq"), lines,
                     local_domains=["empty.test", "noptr.test", "filt.test", "ok.test"])
    server.start()
    yield server
    server.stop()


def discover(port, *domains, extra=()):
    args = [a for d in domains for a in ("--domain", d)]
    p = subprocess.run([sys.executable, "-m", "nmosauth_lite", "discover", "--nameserver", "127.0.0.1:%d" % port,
                        "--timeout", "1"] + args + list(extra), capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    return p.returncode, json.loads(p.stdout), p.stderr.splitlines()


def test_nxdomain_is_named_with_the_question_and_the_server(dnsmasq):
    code, out, err = discover(dnsmasq.port, "empty.test")
    assert (code, out) == (1, [])
    assert err[0] == ("nmosauth-lite discover: no usable authorization server: asked 127.0.0.1:%d for PTR "
                      "%s.empty.test" % (dnsmasq.port, SVC))
    assert err[1:] == ["nmosauth-lite discover: %s.empty.test: NXDOMAIN (no such name: nothing advertised "
                       "in empty.test)" % SVC]


def test_a_name_without_ptr_records(dnsmasq):
    code, out, err = discover(dnsmasq.port, "noptr.test")
    assert (code, out) == (1, []) and len(err) == 2
    assert "%s.noptr.test: no PTR record" % SVC in err[1]


def test_every_filtered_instance_says_why(dnsmasq):
    code, out, err = discover(dnsmasq.port, "filt.test")
    assert (code, out) == (1, []) and len(err) == 4
    why = {line.split("instance ", 1)[1].split(":", 1)[0]: line for line in err[1:]}
    assert "pri >= 100 needs development mode (use --dev" in why["as-dev"]          # DS-09
    assert "api_proto http needs development mode (use --dev" in why["as-plain"]    # DS-07
    assert "no supported api_ver" in why["as-future"]                               # DS-12
    code, out, err = discover(dnsmasq.port, "filt.test", extra=["--dev"])
    assert code == 0 and {s["instance"] for s in out} == {"as-dev", "as-plain"} and err == []


def test_several_domains_each_get_their_line(dnsmasq):
    code, out, err = discover(dnsmasq.port, "empty.test", "noptr.test")
    assert code == 1 and len(err) == 3 and "NXDOMAIN" in err[1] and "no PTR record" in err[2]


def test_no_answer_names_the_time_out():
    port = free_port()  # nothing listens there
    code, out, err = discover(port, "ok.test")
    assert (code, out) == (1, [])
    assert "asked 127.0.0.1:%d" % port in err[0] and "%s.ok.test: no answer (time-out 1 s" % SVC in err[1]


def test_success_stays_quiet(dnsmasq):
    code, out, err = discover(dnsmasq.port, "ok.test")
    assert code == 0 and [s["instance"] for s in out] == ["as-ok"] and err == []
