"""Which IP addresses the browser (and webhooks, and customer S3 endpoints) may reach.

The built-in table is written out range by range instead of leaning on
``ipaddress.is_private``/``is_global``: those flags change between Python
releases and say nothing about metadata endpoints or about IPv6 forms that
carry an IPv4 address inside them, which are exactly the holes SSRF lives in.

Order of a check (SPEC §7 Egress): an ``egress.deny`` entry always blocks; an
``egress.allow`` entry matching (address, port) lets it through; otherwise the
built-in table decides.  Addresses that merely *are* an IPv4 address in IPv6
clothing (mapped, compatible, NAT64) are unwrapped first, so one allow entry
for ``127.0.0.1:8080`` means the same host whatever the spelling.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from screenshot_service.config import ConfigError, EgressConfig

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_net = ipaddress.ip_network

# First match names the reason, so specific entries (metadata) come before the
# ranges that contain them (link-local, CGNAT, ULA).
_V4_TABLE: tuple[tuple[Network, str], ...] = tuple(
    (_net(cidr), label)
    for cidr, label in (
        ("169.254.169.254/32", "cloud metadata address"),  # AWS, GCP, Azure, DO, OpenStack, Oracle
        ("169.254.169.253/32", "cloud metadata address"),  # AWS VPC DNS
        ("169.254.170.2/32", "cloud metadata address"),  # AWS ECS task credentials
        ("169.254.0.23/32", "cloud metadata address"),  # Tencent Cloud
        ("100.100.100.200/32", "cloud metadata address"),  # Alibaba Cloud
        ("168.63.129.16/32", "cloud metadata address"),  # Azure WireServer: a *public* address
        ("192.0.0.192/32", "cloud metadata address"),  # Oracle Cloud (classic)
        ("0.0.0.0/8", "unspecified ('this network') address"),  # Linux connects 0.0.0.0 to localhost
        ("127.0.0.0/8", "loopback address"),
        ("10.0.0.0/8", "private address"),
        ("172.16.0.0/12", "private address"),
        ("192.168.0.0/16", "private address"),
        ("169.254.0.0/16", "link-local address"),
        ("100.64.0.0/10", "carrier-grade NAT address"),
        ("192.0.0.0/24", "IETF protocol assignment address"),
        ("192.0.2.0/24", "documentation (TEST-NET-1) address"),
        ("198.51.100.0/24", "documentation (TEST-NET-2) address"),
        ("203.0.113.0/24", "documentation (TEST-NET-3) address"),
        ("192.88.99.0/24", "6to4 relay anycast address"),
        ("198.18.0.0/15", "benchmarking address"),
        ("224.0.0.0/4", "multicast address"),
        ("255.255.255.255/32", "broadcast address"),
        ("240.0.0.0/4", "reserved address"),
    )
)

_V6_TABLE: tuple[tuple[Network, str], ...] = tuple(
    (_net(cidr), label)
    for cidr, label in (
        ("fd00:ec2::254/128", "cloud metadata address"),  # AWS IMDS over IPv6
        ("fd00:ec2::253/128", "cloud metadata address"),  # AWS VPC DNS over IPv6
        ("::1/128", "loopback address"),
        ("::/128", "unspecified address"),
        ("fc00::/7", "unique local address"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address"),
        ("ff00::/8", "multicast address"),
        ("2001:db8::/32", "documentation address"),
        ("3fff::/20", "documentation address"),
        ("100::/64", "discard-only address"),
        ("64:ff9b:1::/48", "local-use NAT64 address"),  # operator-defined layout: block it whole
        ("2001:2::/48", "benchmarking address"),
        ("2001:10::/28", "ORCHID address"),
        ("2001:20::/28", "ORCHIDv2 address"),
    )
)

# Every unicast address IANA has ever handed out is inside 2000::/3; anything
# else left over after the table (e.g. ::ffff:0:0:0/96 SIIT, 4000::/2) is reserved.
_V6_GLOBAL_UNICAST = _net("2000::/3")
_V4_MAPPED = _net("::ffff:0:0/96")
_V4_COMPATIBLE = _net("::/96")
_NAT64_WELL_KNOWN = _net("64:ff9b::/96")
_SIX_TO_FOUR = _net("2002::/16")
_TEREDO = _net("2001::/32")


def to_address(ip: str | Address) -> Address:
    """An address object without an IPv6 zone id (zones never make a blocked address good)."""
    if isinstance(ip, str):
        return ipaddress.ip_address(ip.split("%", 1)[0].strip("[]"))
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return ipaddress.IPv6Address(int(ip))
    return ip


def unwrap(ip: Address) -> Address:
    """The IPv4 host an IPv6 address *is* (mapped, compatible, NAT64 /96), else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip in _V4_MAPPED or ip in _NAT64_WELL_KNOWN or (ip in _V4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def tunnel_endpoints(ip: Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses a 6to4 or Teredo address would deliver packets through."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    value = int(ip)
    if ip in _SIX_TO_FOUR:
        return [ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)]  # bits 16-47
    if ip in _TEREDO:
        server = ipaddress.IPv4Address((value >> 64) & 0xFFFFFFFF)  # bits 32-63
        client = ipaddress.IPv4Address(~value & 0xFFFFFFFF)  # last 32 bits, inverted on the wire
        return [server, client]
    return []


def builtin_reason(ip: Address) -> str | None:
    """Why the built-in table blocks ``ip`` (already unwrapped), or None when it is public."""
    if isinstance(ip, ipaddress.IPv4Address):
        return next((f"{label} {ip}" for net, label in _V4_TABLE if ip in net), None)
    for net, label in _V6_TABLE:
        if ip in net:
            return f"{label} {ip}"
    for inner in tunnel_endpoints(ip):
        reason = builtin_reason(inner)
        if reason is not None:
            return f"{reason} (embedded in {ip})"
    if ip not in _V6_GLOBAL_UNICAST:
        return f"reserved IPv6 address {ip}"
    return None


@dataclass(frozen=True)
class Rule:
    """One ``egress.allow``/``egress.deny`` entry: a network and, optionally, one port."""

    text: str
    network: Network
    port: int | None

    def matches(self, ip: Address, port: int) -> bool:
        return ip in self.network and (self.port is None or self.port == port)

    @classmethod
    def parse(cls, text: str, key: str) -> Rule:
        def bad(why: str) -> ConfigError:
            return ConfigError(f"{key} entry {text!r} is not allowed: {why}")

        entry, port_text = text.strip(), None
        if entry.startswith("["):
            inside, sep, rest = entry[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise bad("expected '[v6]' or '[v6]:port'")
            entry, port_text = inside, (rest[1:] if rest else None)
        elif entry.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has two or more colons
            entry, port_text = entry.split(":")
        port = None
        if port_text is not None:
            if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
                raise bad("the port must be a number from 1 to 65535")
            port = int(port_text)
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise bad("expected IP, IP:port, CIDR, CIDR:port or [IPv6]:port") from None
        return cls(text, _unwrap_network(network), port)


def _unwrap_network(network: Network) -> Network:
    """``::ffff:10.0.0.0/104`` is the IPv4 network 10.0.0.0/8: store it that way so it matches.

    A /96 or shorter stays IPv6: it names the wrapping range itself (say, "no NAT64").
    """
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen > 96:
        first = unwrap(network.network_address)
        if isinstance(first, ipaddress.IPv4Address):
            return ipaddress.IPv4Network((first, network.prefixlen - 96))
    return network


class EgressPolicy:
    """The built-in table plus the operator's allow/deny entries; ``check`` is pure and fast."""

    def __init__(self, allow: tuple[Rule, ...] = (), deny: tuple[Rule, ...] = ()) -> None:
        self.allow = allow
        self.deny = deny

    @classmethod
    def from_config(cls, cfg: EgressConfig) -> EgressPolicy:
        allow = tuple(Rule.parse(text, "egress.allow") for text in cfg.allow)
        deny = tuple(Rule.parse(text, "egress.deny") for text in cfg.deny)
        return cls(allow, deny)

    def check(self, ip: str | Address, port: int) -> str | None:
        """None when (ip, port) may be reached, else a short reason for logs and error messages."""
        try:
            original = to_address(ip)
        except ValueError:
            return f"not an IP address: {ip!r}"  # fail closed on anything unparseable
        address = unwrap(original)
        # Deny entries see every form: the wrapper (a "no NAT64" entry), the host it
        # is, and the IPv4 endpoints 6to4/Teredo would tunnel through.
        for candidate in (original, address, *tunnel_endpoints(address)):
            for rule in self.deny:
                if rule.matches(candidate, port):
                    return f"denied by egress.deny entry {rule.text}"
        # Allow entries match the host only: a 6to4 wrapper around an allowed
        # IPv4 host is a different route and needs its own entry.
        if any(rule.matches(address, port) for rule in self.allow):
            return None
        reason = builtin_reason(address)
        if reason is not None and address != original:
            reason = f"{reason} (embedded in {original})"
        return reason

    def __repr__(self) -> str:
        return f"EgressPolicy(allow={[r.text for r in self.allow]}, deny={[r.text for r in self.deny]})"
