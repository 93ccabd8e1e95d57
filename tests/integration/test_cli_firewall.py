"""`tapeshared plan/apply` as real processes in a private netns: target + firewall."""

import os
import subprocess
import sys

import pytest
from support.netns_helpers import Netns, skip_reason
from support.paths import ROOT

REASON = skip_reason(["iptables"])
pytestmark = [pytest.mark.netns, pytest.mark.skipif(REASON is not None,
                                                    reason=REASON or "")]

EXPORT = "[export tape0]\nserial = HU19487TL1\ninitiators = %s\n"


@pytest.fixture
def ns():
    space = Netns("tscli")
    yield space
    space.delete()


def cli(ns, conf, *args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("UMOCKDEV_DIR", None)  # the host's (empty) sysfs: no tape is present
    return subprocess.run(ns.argv([sys.executable, "-m", "tapeshared", "-c", conf] +
                                  list(args)), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env,
                          timeout=60)


def rules(ns):
    return ns.run(["iptables", "-w", "-S", "TAPESHARED"], check=False).stdout


def test_apply_opens_exactly_the_initiators_and_repairs_drift(ietroot, ns):
    conf = ietroot.write_config(EXPORT % "192.0.2.10", firewall="iptables")
    planned = cli(ns, conf, "plan")
    assert planned.returncode == 2, planned.stderr
    assert "firewall:" in planned.stdout and "TAPESHARED" in planned.stdout
    applied = cli(ns, conf, "apply")
    assert applied.returncode == 0, applied.stderr
    assert "-A TAPESHARED -s 192.0.2.10/32" in rules(ns)
    again = cli(ns, conf, "plan")
    assert again.returncode == 0, again.stdout + again.stderr
    ns.run(["iptables", "-w", "-F", "TAPESHARED"])
    assert cli(ns, conf, "plan").returncode == 2
    assert cli(ns, conf, "apply").returncode == 0
    assert "-A TAPESHARED -s 192.0.2.10/32" in rules(ns)
    ietroot.write_config(EXPORT % "198.51.100.0/24", firewall="iptables")
    assert cli(ns, conf, "apply").returncode == 0
    current = rules(ns)
    assert "198.51.100.0/24" in current and "192.0.2.10" not in current


def test_portal_without_address_opens_nothing_then_follows_it(ietroot, ns):
    ns.run(["ip", "link", "add", "ts0", "type", "veth", "peer", "name", "ts1"])
    ns.run(["ip", "link", "set", "ts0", "up"])
    conf = ietroot.write_config(EXPORT % "192.0.2.10", firewall="iptables", portal="ts0")
    assert cli(ns, conf, "apply").returncode == 0
    current = rules(ns)
    assert "ACCEPT" not in current and "REJECT" in current
    ns.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "ts0"])
    assert cli(ns, conf, "plan").returncode == 2
    assert cli(ns, conf, "apply").returncode == 0
    assert "-A TAPESHARED -s 192.0.2.10/32 -d 192.0.2.1/32" in rules(ns)
    ns.run(["ip", "addr", "del", "192.0.2.1/24", "dev", "ts0"])
    assert cli(ns, conf, "apply").returncode == 0
    assert "ACCEPT" not in rules(ns)


def test_plan_names_a_family_that_cannot_be_brought_in_step(ietroot, ns):
    conf = ietroot.write_config(EXPORT % "192.0.2.10", firewall="iptables",
                                firewall_parent="RH-Firewall-1-INPUT")
    planned = cli(ns, conf, "plan")
    assert "# firewall iptables: cannot be brought in step now: parent chain " \
        "RH-Firewall-1-INPUT does not exist" in planned.stdout, planned.stdout
    assert "# firewall ip6tables: cannot be brought in step now" in planned.stdout
    assert "Traceback" not in planned.stderr
