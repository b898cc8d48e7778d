"""The egress policy: every built-in range, every allow/deny entry form, every bad entry."""

from __future__ import annotations

import ipaddress

import pytest

from screenshot_service.config import ConfigError, EgressConfig
from screenshot_service.egress.policy import EgressPolicy

DEFAULT = EgressPolicy.from_config(EgressConfig())


def policy(allow: list[str] | None = None, deny: list[str] | None = None) -> EgressPolicy:
    return EgressPolicy.from_config(EgressConfig(allow=allow or [], deny=deny or []))


# (address, a word the reason must contain)
BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.0.1", "private"),
    ("169.254.1.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("192.0.0.8", "IETF protocol"),
    ("192.0.2.1", "TEST-NET-1"),
    ("198.51.100.1", "TEST-NET-2"),
    ("203.0.113.1", "TEST-NET-3"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.254", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("100.100.100.200", "metadata"),
    ("168.63.129.16", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique local"),
    ("fdff:ffff::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("100::1", "discard"),
    ("4000::1", "reserved"),
    ("::ffff:0:7f00:1", "reserved"),  # SIIT "IPv4-translated", outside 2000::/3
    # IPv4 inside IPv6: judged by the IPv4 address inside.
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("::ffff:10.1.2.3", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::127.0.0.1", "loopback"),
    ("::10.0.0.1", "private"),
    ("64:ff9b::127.0.0.1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b:1::808:808", "local-use NAT64"),
    ("2002:7f00:1::", "loopback"),
    ("2002:a9fe:a9fe::1", "metadata"),
    ("2002:c0a8:101::1", "private"),
    # Teredo: server 65.54.227.120 (public), client ~0x80fffffe = 127.0.0.1.
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),
    # Teredo: server 10.0.0.1, client ~0xf7f7f7f7 = 8.8.8.8 (public).
    ("2001:0:a00:1::f7f7:f7f7", "private"),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "11.0.0.1",
    "100.63.255.255",
    "100.128.0.1",
    "172.15.255.255",
    "172.32.0.1",
    "192.169.0.1",
    "198.17.255.255",
    "198.20.0.1",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001:800::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo server and client both public
]


@pytest.mark.parametrize(("address", "word"), BLOCKED)
def test_builtin_table_blocks(address: str, word: str) -> None:
    reason = DEFAULT.check(address, 80)
    assert reason is not None and word in reason, reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert DEFAULT.check(address, 443) is None
    assert DEFAULT.check(ipaddress.ip_address(address), 443) is None


def test_reason_names_the_address() -> None:
    assert DEFAULT.check("127.0.0.1", 80) == "loopback address 127.0.0.1"
    assert DEFAULT.check("::ffff:127.0.0.1", 80) == "loopback address 127.0.0.1 (embedded in ::ffff:7f00:1)"


def test_not_an_address_fails_closed() -> None:
    assert DEFAULT.check("localhost", 80) == "not an IP address: 'localhost'"


# --------------------------------------------------------------------------- allow entries
# (entry, [(address, port) now allowed], [(address, port) still blocked])
ALLOW_CASES = [
    ("127.0.0.1", [("127.0.0.1", 80), ("127.0.0.1", 9000)], [("127.0.0.2", 80), ("::1", 80)]),
    (
        "127.0.0.1:8080",
        [("127.0.0.1", 8080), ("::ffff:127.0.0.1", 8080), ("64:ff9b::7f00:1", 8080)],
        [("127.0.0.1", 9000), ("::ffff:127.0.0.1", 9000), ("127.0.0.2", 8080)],
    ),
    ("10.0.0.0/8", [("10.1.2.3", 80), ("10.255.0.1", 5432)], [("192.168.1.1", 80), ("172.16.0.1", 80)]),
    ("10.0.0.0/8:443", [("10.1.2.3", 443)], [("10.1.2.3", 80), ("10.1.2.3", 8443)]),
    ("[::1]:8080", [("::1", 8080)], [("::1", 80), ("127.0.0.1", 8080)]),
    ("::1", [("::1", 1), ("::1", 65535)], [("::2", 80)]),
    ("fd00::/8", [("fd12::1", 80)], [("fc00::1", 80), ("fe80::1", 80)]),
    ("[fd00::/8]:443", [("fd12::1", 443)], [("fd12::1", 80)]),
    ("[::ffff:127.0.0.1]:8080", [("127.0.0.1", 8080)], [("127.0.0.1", 80)]),
    ("::ffff:10.0.0.0/104", [("10.9.9.9", 80)], [("192.168.0.1", 80), ("127.0.0.1", 80)]),
    ("169.254.169.254:80", [("169.254.169.254", 80)], [("169.254.170.2", 80)]),
]


@pytest.mark.parametrize(("entry", "opened", "closed"), ALLOW_CASES)
def test_allow_entry_opens_exactly_its_hole(
    entry: str, opened: list[tuple[str, int]], closed: list[tuple[str, int]]
) -> None:
    p = policy(allow=[entry])
    for address, port in opened:
        assert p.check(address, port) is None, (entry, address, port)
    for address, port in closed:
        assert p.check(address, port) is not None, (entry, address, port)


def test_allow_does_not_open_tunnel_wrappers() -> None:
    # 6to4/Teredo deliver through a relay: a different route needs its own entry.
    p = policy(allow=["127.0.0.1"])
    assert p.check("2002:7f00:1::", 80) is not None
    assert p.check("2001:0:4136:e378:8000:63bf:80ff:fffe", 80) is not None


# --------------------------------------------------------------------------- deny entries


def test_deny_cidr_blocks_public_addresses() -> None:
    p = policy(deny=["8.8.8.0/24"])
    assert p.check("8.8.8.8", 443) == "denied by egress.deny entry 8.8.8.0/24"
    assert p.check("8.8.4.4", 443) is None


def test_deny_with_port_blocks_only_that_port() -> None:
    p = policy(deny=["1.1.1.1:443"])
    assert p.check("1.1.1.1", 443) is not None
    assert p.check("1.1.1.1", 80) is None


def test_deny_v6_bracket_port() -> None:
    p = policy(deny=["[2606:4700::/32]:443"])
    assert p.check("2606:4700:4700::1111", 443) is not None
    assert p.check("2606:4700:4700::1111", 80) is None


def test_deny_beats_allow() -> None:
    p = policy(allow=["10.0.0.0/8"], deny=["10.0.0.5"])
    assert p.check("10.0.0.5", 80) == "denied by egress.deny entry 10.0.0.5"
    assert p.check("10.0.0.6", 80) is None


def test_deny_sees_every_wrapping() -> None:
    p = policy(deny=["8.8.8.8"])
    for wrapped in ("::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2001:0:808:808::f7f7:f7f7"):
        assert p.check(wrapped, 80) is not None, wrapped


def test_deny_wrapper_range_itself() -> None:
    p = policy(deny=["64:ff9b::/96"])  # "no NAT64", not "no IPv4"
    assert p.check("64:ff9b::808:808", 80) is not None
    assert p.check("8.8.8.8", 80) is None


# --------------------------------------------------------------------------- bad entries

BAD_ENTRIES = [
    "",
    "not-an-ip",
    "example.com",
    "example.com:80",
    "10.0.0.0/33",
    "256.0.0.1",
    "127.0.0.1:0",
    "127.0.0.1:65536",
    "127.0.0.1:http",
    "127.0.0.1:",
    "[::1",
    "[::1]8080",
    "[::1]:",
    "[127.0.0.1/8]:x",
    "1.2.3.4:80:90",
]


@pytest.mark.parametrize("entry", BAD_ENTRIES)
@pytest.mark.parametrize("key", ["allow", "deny"])
def test_bad_entry_is_a_config_error_naming_it(key: str, entry: str) -> None:
    with pytest.raises(ConfigError) as info:
        EgressPolicy.from_config(EgressConfig(**{key: [entry]}))
    assert f"egress.{key}" in str(info.value)
    assert repr(entry) in str(info.value)


def test_repr_lists_entries() -> None:
    assert "10.0.0.0/8" in repr(policy(allow=["10.0.0.0/8"]))
