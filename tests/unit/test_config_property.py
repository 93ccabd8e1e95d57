"""Property: any config file either loads and then plans without exception on every
backend and firewall, or is refused with a ConfigError at file:line[:[section][:key]]."""

import ipaddress
import os
import re
import shutil
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import builders

from tapeshared import config
from tapeshared.backends.iet import plan as ietplan
from tapeshared.backends.lio import plan as lioplan
from tapeshared.backends.lio.state import LioState
from tapeshared.backends.tgt import plan as tgtplan
from tapeshared.backends.tgt.show import TgtState
from tapeshared.core.desired import desired_state
from tapeshared.core.errors import ConfigError
from tapeshared.core.names import parse_portal
from tapeshared.firewall.iptables import plan as iptplan
from tapeshared.firewall.nft import plan as nftplan
from tapeshared.firewall.spec import checked, spec_for

EXAMPLES = int(os.environ.get("TAPESHARED_CONFIG_EXAMPLES", "300"))
SECRET = "averylongsecret1"

BASES = [
    "[global]\nbackend = iet\nfirewall = iptables\nportal = 192.0.2.1\n\n"
    "[export tape0]\nserial = HU1\ninitiators = 192.0.2.10, 2001:db8::/32\n"
    "incoming_user = backup\nincoming_secret_file = {secret}\n",
    "[global]\nbackend = lio\nfirewall = nftables\nport = 3261\n"
    "[export lib]\nlun0 = serial:CH1\nlun1 = wwn:5000e11100000001\n"
    "initiators = ALL\ninitiator_iqns = iqn.1994-05.com.example:backup\n",
    "[global]\nbackend = tgt\nportal = eth0\nfirewall_chain = TS_CHAIN\n"
    "firewall_parent = RH-Firewall-1-INPUT\n"
    "[export a]\nserial = HU1\nlun = 1\ninitiators = 10.0.0.0/8\n"
    "initiator_iqns = iqn.1994-05.com.example:a eui.0123456789abcdef\n"
    "[export b]\nwwn = naa.5000e11100000002\nlun = 2\ninitiators = 192.0.2.7\n"
    "initiator_iqns = iqn.1994-05.com.example:b\nabsent = remove\n"
    "session.MaxBurstLength = 262144\nsession.HeaderDigest = CRC32C,None\n",
]
KEYS = ["backend", "apply_mode", "ietd_conf", "initiators_allow", "initiators_deny",
        "manage_access", "restart_command", "portal", "port", "iqn_prefix", "firewall",
        "firewall_chain", "firewall_parent", "firewall_save_file", "firewall_save_file6",
        "state_dir", "lock_file", "lock_timeout", "debounce", "debounce_max",
        "resync_interval", "stop_action", "iqn", "serial", "wwn", "lun", "lun0", "lun3",
        "initiators", "initiator_iqns", "incoming_user", "incoming_secret_file",
        "outgoing_user", "outgoing_secret_file", "absent", "allow_remote",
        "session.MaxBurstLength", "session.HeaderDigest", "session.InitialR2T", "bogus"]
VALUES = ["", " ", "0", "1", "-1", "65535", "65536", "3260.5", "nan", "1e9", "yes", "no",
          "ALL", "all", "0.0.0.0", "::", "224.0.0.1", "fe80::1", "fe80::1%eth0", "eth0",
          "eth0:1", "eth0:1:2", "lo", "127.0.0.1", "::1", "[2001:db8::1]", "192.0.2.1:3260",
          "::ffff:10.0.0.1", "10.0.0.1/8", "10.0.0.0/8", "192.0.2.10", ",", "a, ,b",
          "INPUT", "LOG", "accept", "TAPESHARED", "x" * 29, "-chain", "iqn.2007-04.com.x:y",
          "iqn.2007-04.com.example", "IQN.2007-04.COM.X:Y", "eui.0123456789abcdef",
          "naa.0123456789abcdef", "iqn." + "a" * 230, "serial:HU1", "wwn:5000e11100000001",
          "serial:HU2", "serial:" + "A" * 200, "HU1", "HU2", "A" * 200, "5000e11100000001",
          "/etc/ietd.conf", "/etc/initiators.allow", "/run/tapeshared/state.json", "relative",
          "/" + "p" * 300, "iet", "lio", "tgt", "scst", "keep", "remove", "restart", "live",
          "/bin/true {portal}", "'unterminated", "CRC32C", "None", "Yes", "\u00b2",
          "x # comment", "a;b", "\\", "%", "[x]", "\u00e9t\u00e9", "\u200b"]
HEADERS = ["[global]", "[export t]", "[export  t]", "[export t ]", "[export]", "[Global]",
           "[export a b]", "[export tape0]", "[export " + "n" * 63 + "]", "[export -x]",
           "[global", "[]", "[export t] ; c", "[export t]x"]
RAW = [b"\xef\xbb\xbf", b"\xff", b"\x00", b"\r", b"\t", b"\n", b"\n  ", b"=", b":", b"#",
       b" ;", b"[", b"]", b"\xc3", b"\xe2\x80\xa8", b"\r\n"]


# Per key: values valid on their own, then values that are not. Valid values
# combine into cross-key conflicts (a parent equal to the chain, two managed
# files at one path, tgt with LUN 0, lio without initiator IQNs, ...).
GLOBAL_POOLS = {
    "backend": (["iet", "lio", "tgt", "IET"], ["scst"]),
    "apply_mode": (["restart", "live"], ["reload"]),
    "manage_access": (["yes", "no"], ["maybe"]),
    "portal": (["192.0.2.1", "2001:db8::1", "[2001:db8::1]", "eth0", "eth0:1", "lo"],
               ["0.0.0.0", "::", "fe80::1", "eth0:1:2", "192.0.2.1:3260",
                "::ffff:192.0.2.1", "!"]),
    "port": (["3260", "3261", "1", "65535"], ["0", "65536", "x"]),
    "iqn_prefix": (["iqn.2007-04.com.example", "iqn.2020-01.org.test:tapes",
                    "iqn.2007-04.com.example:" + "p" * 180], ["iqn.2007-04", "eui.0"]),
    "firewall": (["none", "iptables", "nftables"], ["ufw"]),
    "firewall_chain": (["TAPESHARED", "TS_CHAIN", "ts", "A" * 28],
                       ["INPUT", "LOG", "accept", "counter", "-x", "A" * 29, "a.b"]),
    "firewall_parent": (["INPUT", "RH-Firewall-1-INPUT", "TAPESHARED", "TS_CHAIN", "ts"],
                        ["ACCEPT", "a b"]),
    "ietd_conf": (["/etc/ietd.conf", "/etc/iet/ietd.conf"],
                  ["etc/x", "/etc/initiators.allow"]),
    "initiators_allow": (["/etc/initiators.allow", "/etc/iet/initiators.allow"],
                         ["/etc/ietd.conf"]),
    "initiators_deny": (["/etc/initiators.deny"], ["/etc/initiators.allow"]),
    "firewall_save_file": (["/etc/sysconfig/iptables"], ["/etc/ietd.conf"]),
    "firewall_save_file6": (["/etc/sysconfig/ip6tables"], ["/etc/sysconfig/iptables"]),
    "state_dir": (["/run/tapeshared", "/run/ts"], ["run"]),
    "lock_file": (["/run/tapeshared/apply.lock", "/run/lock/tapeshared"],
                  ["/run/tapeshared/state.json", "/run/tapeshared"]),
    "restart_command": (["/etc/init.d/iscsi-target restart", "/bin/true {portal}"],
                        ["'x", ""]),
    "debounce": (["0.15", "0.01", "1"], ["0", "nan"]),
    "debounce_max": (["2", "600"], ["601", "0.01"]),
    "lock_timeout": (["30", "0"], ["3601"]),
    "stop_action": (["keep", "unexport"], ["drop"]),
}
EXPORT_POOLS = {
    "iqn": (["iqn.2007-04.com.example:t", "iqn.2007-04.com.example:u",
             "eui.0123456789abcdef", "naa.0123456789abcdef", "IQN.2007-04.COM.EXAMPLE:T"],
            ["iqn.2007-04.com..x:t", "iqn.2007-04.com.example:" + "a" * 200]),
    "initiators": (["ALL", "192.0.2.10", "192.0.2.10, 198.51.100.0/24", "2001:db8::/32",
                    "0.0.0.0/0"], ["10.0.0.1/8", "fe80::1%eth0", "::ffff:10.0.0.1", ",",
                                   "224.0.0.1"]),
    "initiator_iqns": (["iqn.1994-05.com.example:backup",
                        "iqn.1994-05.com.example:a, eui.0123456789abcdef"], ["IQN", ""]),
    "absent": (["keep", "remove"], ["vanish"]),
    "allow_remote": (["yes", "no"], ["2"]),
    "session.MaxBurstLength": (["262144", "8192"], ["511", "16777216"]),
    "session.FirstBurstLength": (["65536", "512"], ["300"]),
    "session.HeaderDigest": (["None", "CRC32C", "crc32c,none"], ["md5"]),
    "session.InitialR2T": (["Yes", "no"], ["1"]),
    "incoming_user": (["backup"], ["bad user"]),
}
DEVICES = (["serial = HU1", "serial = HU2", "serial = CH1", "wwn = 5000e11100000001",
            "wwn = naa.5000E11100000002", "serial = HU1\nlun = 1", "lun0 = serial:CH1\n"
            "lun1 = serial:HU1", "lun1 = wwn:5000e11100000001\nlun2 = serial:HU2",
            "lun0 = serial:HU1\nlun1 = wwn:5000e11100000001"],
           ["serial = " + "A" * 129, "lun1 = disk:X", "serial = HU2\nlun = 16384"])


def _pick(draw, pools, bad_rate):
    good, bad = pools
    if bad and draw(st.integers(0, 99)) < bad_rate:
        return draw(st.sampled_from(bad))
    return draw(st.sampled_from(good))


@st.composite
def generated(draw):
    """A configuration built key by key from the pools, mostly of valid values."""
    bad_rate = draw(st.sampled_from([0, 0, 5, 20]))
    lines = ["[global]"]
    for key, pools in GLOBAL_POOLS.items():
        if key == "backend" or draw(st.integers(0, 9)) < 3:
            lines.append("%s = %s" % (key, _pick(draw, pools, bad_rate)))
    names = draw(st.lists(st.sampled_from(["t", "u", "tape0", "n" * 63]), min_size=1, max_size=3,
                          unique=True))
    if names and draw(st.integers(0, 9)) == 0:
        names.append(names[0])  # one export twice
    for name in names:
        lines.append("[export %s]" % name)
        lines.append(_pick(draw, DEVICES, bad_rate))
        for key, pools in EXPORT_POOLS.items():
            if key == "initiators" or draw(st.integers(0, 9)) < (
                    8 if key == "initiator_iqns" else 3):
                lines.append("%s = %s" % (key, _pick(draw, pools, bad_rate)))
                if key == "incoming_user":
                    lines.append("incoming_secret_file = {secret}")
    return "\n".join(lines) + "\n"


@st.composite
def mutated(draw):
    """A valid base (or generated) file with a few random edits, and perhaps a drop-in."""
    mode = draw(st.integers(0, 2))  # 0: generated as is; 1, 2: with edits
    base = draw(generated()) if mode != 1 else draw(st.sampled_from(BASES))
    if mode == 0:
        return base.encode("utf-8"), None
    lines = base.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.integers(0, 6))
        index = draw(st.integers(0, len(lines)))
        line = lines[min(index, len(lines) - 1)]
        if edit == 0 and "=" in line:  # a new value for an existing key
            value = draw(st.one_of(st.sampled_from(VALUES), st.text(max_size=12)))
            lines[min(index, len(lines) - 1)] = line.split("=")[0] + "= " + value
        elif edit == 1:  # a new key anywhere
            lines.insert(index, "%s = %s" % (draw(st.sampled_from(KEYS)),
                                             draw(st.sampled_from(VALUES))))
        elif edit == 2:  # a header
            lines.insert(index, draw(st.sampled_from(HEADERS)))
        elif edit == 3 and lines:  # a line dropped or doubled
            if draw(st.booleans()):
                del lines[min(index, len(lines) - 1)]
            else:
                lines.insert(index, line)
        elif edit == 4:  # random text
            lines.insert(index, draw(st.text(max_size=20)))
        elif edit == 5:  # a key's case or spacing
            lines[min(index, len(lines) - 1)] = draw(st.sampled_from(
                [line.upper(), "  " + line, line.replace(" = ", "="),
                 line.replace("=", ":", 1), line + "  ", "\t" + line]))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 3)) == 0:  # raw bytes somewhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(RAW)) + data[at:]
    dropin = None
    if draw(st.integers(0, 3)) == 0:
        dropin = ("%s\n%s = %s\n" % (draw(st.sampled_from(HEADERS)),
                                      draw(st.sampled_from(KEYS)),
                                      draw(st.sampled_from(VALUES)))).encode("utf-8")
    return data, dropin


def plan_everything(cfg):
    """What check-config's acceptance promises: every planner runs on it."""
    devices = [builders.tape("1:0:6:0", serial="HU1", sg="/dev/sg1"),
               builders.tape("2:0:0:0", serial="CH1", kind=8, sg="/dev/sg2"),
               builders.tape("3:0:1:0", serial=None, wwn="5000e11100000001", sg="/dev/sg3"),
               builders.tape("3:0:2:0", serial="HU2", wwn="5000e11100000002",
                             sg="/dev/sg4")]
    g = cfg.globals
    portals = []
    if g.portal:
        parsed = parse_portal(g.portal)
        portals = [str(parsed.address)] if parsed.address is not None else ["192.0.2.1"]
    desired = desired_state(cfg, devices)
    settings_ = ietplan.settings_for(g)
    if g.backend == "iet":
        detail = ietplan.IetDetail(conf=None, allow=None, deny=None, volume={})
        ietplan.plan(ietplan.snapshot(detail, {}, settings_), desired, settings_)
    elif g.backend == "lio":
        lioplan.plan_ops(LioState(), desired, g.port)
    else:
        tgtplan.plan_ops(TgtState(), desired)
    spec = checked(spec_for(cfg, portals))
    for family in (4, 6):
        iptplan.chain_rules(spec, family)
    iptplan.jump_rule(spec)
    nftplan.nft_script(spec)
    for net in spec.sources:
        ipaddress.ip_network(net)


WHERE = re.compile(r"\A(?P<path>/[^:]+):(?P<line>[0-9]+)(:\[(?P<section>[^\]\n]+)\]"
                   r"(:(?P<key>[a-z0-9_.]+))?)?: \S")


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(mutated())
def test_any_config_is_either_refused_at_its_line_or_plans_cleanly(case):
    data, dropin = case
    root = tempfile.mkdtemp(prefix="tscfg")
    try:
        secret = os.path.join(root, "chap")
        with open(secret, "w") as handle:
            handle.write(SECRET + "\n")
        os.chmod(secret, 0o600)
        path = os.path.join(root, "tapeshared.conf")
        with open(path, "wb") as handle:
            handle.write(data.replace(b"{secret}", secret.encode()))
        files = [path]
        if dropin is not None:
            os.mkdir(os.path.join(root, "conf.d"))
            files.append(os.path.join(root, "conf.d", "10-x.conf"))
            with open(files[-1], "wb") as handle:
                handle.write(dropin)
        try:
            cfg = config.load(path)
        except ConfigError as exc:
            message = str(exc)
            match = WHERE.match(message)
            assert match, message
            assert match.group("path") in files, message
            lines = open(match.group("path"), "rb").read().count(b"\n") + 1
            assert 1 <= int(match.group("line")) <= lines, message
            assert "\n" not in message, message
            return
        plan_everything(cfg)
    finally:
        shutil.rmtree(root)
