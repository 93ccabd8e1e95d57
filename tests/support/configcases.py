"""Bad configuration files, each with where (after the path) and what the error must say."""

OK = "[export t]\nserial = A\ninitiators = ALL\n"


def glob_(line):
    return "[global]\n%s\n" % line


def export(line):
    return "[export t]\nserial = A\ninitiators = ALL\n%s\n" % line


# (file content, where: the text after the path, what: words in the message)
CASES = [
    # section headers: never two exports of one name, never a KeyError later
    ("[export  tape0]\nserial = A\ninitiators = ALL\n", ":1: section header [export  tape0]",
     "one space"),
    ("[export tape0 ]\nserial = A\ninitiators = ALL\n", ":1: section header [export tape0 ]",
     "no space inside the brackets"),
    ("[ export tape0]\nserial = A\n", ":1: section header", "one space"),
    ("[ global ]\nport = 1\n", ":1: section header [ global ]", "no space"),
    (OK + "[export t ]\nserial = B\ninitiators = ALL\n", ":4: section header [export t ]",
     "one space"),
    ("[export]\nserial = A\n", ":1: section header [export]", "[export NAME]"),
    ("[export a b]\nserial = A\n", ":1: export name 'a b'", "letters, digits"),
    ("[Global]\nport = 1\n", ":1: unknown section [Global]", "expected [global]"),
    ("[global\nport = 1\n", ":1: section header '[global'", "does not end with ']'"),
    ("[global] junk\n", ":1: section header", "does not end with ']'"),
    (OK + OK, ":4:", "[export t] given twice in this file (first at line 1)"),
    # syntax: the line is named
    ("port = 3260\n", ":1: port = ... before any [section]", "header"),
    ("[global]\nport 3260\n", ":2: expected KEY = VALUE", "'port 3260'"),
    ("[global]\n= 3260\n", ":2: a value without a key", "= 3260"),
    ("[global]\nport = 1\nPort = 2\n", ":3:[global]:port", "given twice in this section "
     "(first at line 2)"),
    # bytes: a BOM, non-UTF-8, control characters
    (b"\xef\xbb\xbf[global]\nport = 3260\n", ":1: starts with a byte order mark", "BOM"),
    (b"[global]\n# caf\xe9\n", ":2: not UTF-8 text", "byte 0xe9 at column 6"),
    (b"[global]\nport = 3\x0060\n", ":2: control character U+0000", "column 9"),
    (b"[global]\nport = 1\rport = 2\n", ":2: control character U+000D", "column 9"),
    ("[global]\nport = 1\u2028\n", ":2: control character U+2028", "column 9"),
    # the portal: one rule (core.names.parse_portal), rejected at check-config
    (glob_("portal = 0.0.0.0"), ":2:[global]:portal", "unspecified address"),
    (glob_("portal = ::"), ":2:[global]:portal", "unspecified address"),
    (glob_("portal = 224.0.0.1"), ":2:[global]:portal", "multicast"),
    (glob_("portal = ff02::1"), ":2:[global]:portal", "multicast"),
    (glob_("portal = 255.255.255.255"), ":2:[global]:portal", "broadcast"),
    (glob_("portal = fe80::1"), ":2:[global]:portal", "link-local"),
    (glob_("portal = fe80::1%eth0"), ":2:[global]:portal", "scoped"),
    (glob_("portal = [fe80::1%eth0]"), ":2:[global]:portal", "scoped"),
    (glob_("portal = ::ffff:192.0.2.1"), ":2:[global]:portal",
     "IPv4-mapped IPv6 address; write it as IPv4 (192.0.2.1)"),
    (glob_("portal = eth0:1:2"), ":2:[global]:portal", "NAME or NAME:LABEL"),
    (glob_("portal = eth0:"), ":2:[global]:portal", "NAME or NAME:LABEL"),
    (glob_("portal = 192.0.2.1:3260"), ":2:[global]:portal", "set the port with port ="),
    (glob_("portal = 192.0.2.1:99999"), ":2:[global]:portal", "without a port"),
    (glob_("portal = [2001:db8::1]:3260"), ":2:[global]:portal", "without a port"),
    (glob_("portal = [192.0.2.1]"), ":2:[global]:portal", "only IPv6 addresses go in brackets"),
    (glob_("portal = 2001:db8::zz"), ":2:[global]:portal", "not an IPv6 address"),
    (glob_("portal = 192.0.2.300"), ":2:[global]:portal", "not an IP address"),
    (glob_("portal = !!!"), ":2:[global]:portal", "not an interface name"),
    (glob_("portal = averyveryverylongname0"), ":2:[global]:portal", "1 to 15 characters"),
    (glob_("portal = ../x"), ":2:[global]:portal", "not an interface name"),
    (glob_("port = 0"), ":2:[global]:port", "out of range"),
    (glob_("port = 65536"), ":2:[global]:port", "out of range"),
    (glob_("port = 3260.5"), ":2:[global]:port", "expected a whole number"),
    (glob_("port = " + "9" * 30), ":2:[global]:port", "expected a whole number"),
    (glob_("debounce = nan"), ":2:[global]:debounce", "expected a number"),
    (glob_("debounce = 1e999"), ":2:[global]:debounce", "expected a number"),
    # initiators: rejected, never silently widened or narrowed
    ("[export t]\nserial = A\ninitiators = fe80::1%eth0\n", ":3:[export t]:initiators",
     "scoped addresses are not supported"),
    ("[export t]\nserial = A\ninitiators = fe80::%eth0/64\n", ":3:[export t]:initiators",
     "scoped"),
    ("[export t]\nserial = A\ninitiators = fe80::1\n", ":3:[export t]:initiators",
     "link-local"),
    ("[export t]\nserial = A\ninitiators = ::ffff:10.0.0.1\n", ":3:[export t]:initiators",
     "write it as IPv4 (10.0.0.1)"),
    ("[export t]\nserial = A\ninitiators = ::ffff:10.0.0.0/120\n", ":3:[export t]:initiators",
     "write it as IPv4 (10.0.0.0/24)"),
    ("[export t]\nserial = A\ninitiators = 10.0.0.1/8\n", ":3:[export t]:initiators",
     "host bits set (the network is 10.0.0.0/8)"),
    ("[export t]\nserial = A\ninitiators = 0.0.0.0\n", ":3:[export t]:initiators",
     "unspecified"),
    ("[export t]\nserial = A\ninitiators = 224.0.0.0/4\n", ":3:[export t]:initiators",
     "multicast"),
    ("[export t]\nserial = A\ninitiators = ,\n", ":3:[export t]:initiators", "an empty list"),
    ("[export t]\nserial = A\ninitiators =\n", ":3:[export t]:initiators", "required"),
    ("[export t]\nserial = A\n", ":1:[export t]:initiators", "required"),
    # firewall names
    (glob_("firewall_chain = INPUT"), ":2:[global]:firewall_chain", "built-in chain"),
    (glob_("firewall_chain = LOG"), ":2:[global]:firewall_chain", "iptables target"),
    (glob_("firewall_chain = accept"), ":2:[global]:firewall_chain", "nft keyword"),
    (glob_("firewall_chain = Counter"), ":2:[global]:firewall_chain", "'counter', which is"),
    (glob_("firewall_chain = -x"), ":2:[global]:firewall_chain", "not starting with -"),
    (glob_("firewall_chain = " + "A" * 29), ":2:[global]:firewall_chain",
     "1-28 letters"),
    (glob_("firewall_chain = 1abc"), ":2:[global]:firewall_chain", "nft table name"),
    (glob_("firewall_chain = a.b"), ":2:[global]:firewall_chain", "nft table name"),
    (glob_("firewall_parent = TAPESHARED"), ":2:[global]:firewall_parent", "our own chain"),
    ("[global]\nfirewall_chain = FOO\nfirewall_parent = FOO\n", ":3:[global]:firewall_parent",
     "our own chain"),
    ("[global]\nfirewall_parent = FOO\nfirewall_chain = FOO\n", ":2:[global]:firewall_parent",
     "our own chain"),
    (glob_("firewall_parent = ACCEPT"), ":2:[global]:firewall_parent", "iptables target"),
    (glob_("firewall_parent = a b"), ":2:[global]:firewall_parent", "not a valid chain"),
    # iSCSI names (RFC 3720/3721/3980)
    (export("iqn = iqn.2007-04.com.example:" + "a" * 200), ":4:[export t]:iqn",
     "too long (224 bytes, at most 223)"),
    (export("iqn = iqn.2007-13.com.example:t"), ":4:[export t]:iqn", "not a valid iSCSI"),
    (export("iqn = iqn.2007-04.com..example:t"), ":4:[export t]:iqn", "not a valid iSCSI"),
    (export("iqn = iqn.2007-04.-com.example:t"), ":4:[export t]:iqn", "not a valid iSCSI"),
    (export("iqn = iqn.2007-04.com.example:t t"), ":4:[export t]:iqn", "not a valid iSCSI"),
    (export("iqn = eui.0123456789abcde"), ":4:[export t]:iqn", "eui. and 16 hex"),
    (export("iqn = naa.0123456789abcdef0"), ":4:[export t]:iqn", "naa. and 16 or 32"),
    (export("initiator_iqns = iqn.1994-05.com.example:a, IQN"), ":4:[export t]:initiator_iqns",
     "'iqn'"),
    ("[global]\niqn_prefix = iqn.2007-04.com.example:" + "p" * 150 + "\n"
     "[export " + "n" * 60 + "]\nserial = A\ninitiators = ALL\n", ":3:[export n", ":iqn: "),
    (glob_("iqn_prefix = iqn.2007-04.com.example:"), ":2:[global]:iqn_prefix",
     "name prefix"),
    # identities
    (export("").replace("serial = A", "serial = " + "A" * 200), ":2:[export t]:serial",
     "too long (200 characters, at most 128)"),
    ("[export t]\nserial =\ninitiators = ALL\n", ":2:[export t]:serial", "empty"),
    ("[export t]\nlun0 = serial:A\nlun00 = serial:B\ninitiators = ALL\n", ":3:[export t]:lun00",
     "LUN 0 given twice"),
    ("[export t]\nlun0 = serial:A\nlun1 = serial:A\ninitiators = ALL\n", ":3:[export t]:lun1",
     "also configured in [export t] LUN 0 ("),
    (export("session.MaxBurstLength = \u00b2"), ":4:[export t]:session.maxburstlength",
     "whole number"),
    (export("incoming_user = u\nincoming_secret_file = chap"), ":5:[export t]:"
     "incoming_secret_file", "absolute path"),
    # managed files: one path each, never a config file
    ("[global]\nietd_conf = /etc/x\ninitiators_allow = /etc/x\n",
     ":3:[global]:initiators_allow", "/etc/x is also ietd_conf (/etc/x)"),
    ("[global]\ninitiators_deny = /etc/./ietd.conf\n", ":2:[global]:initiators_deny",
     "is also ietd_conf"),
    ("[global]\nlock_file = /run/tapeshared/state.json\n", ":2:[global]:lock_file",
     "is also state_dir"),
    ("[global]\nlock_file = /run/tapeshared\n", ":2:[global]:lock_file", "is also state_dir"),
    ("[global]\nfirewall = iptables\nfirewall_save_file = /etc/sysconfig/iptables\n"
     "firewall_save_file6 = /etc/sysconfig/iptables\n", ":4:[global]:firewall_save_file6",
     "is also firewall_save_file"),
    (glob_("ietd_conf = /" + "x" * 256), ":2:[global]:ietd_conf", "too long for a path"),
]
