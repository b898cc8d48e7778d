"""Target URL parsing and the up-front check: hardening-suite style, one test per rejection rule.

No test here touches the network: names are answered by a ``StaticResolver``
and IP literals never reach a resolver at all.
"""

from __future__ import annotations

import ipaddress

import pytest

from screenshot_service.config import EgressConfig
from screenshot_service.egress.errors import EgressBlocked, InvalidUrl, TargetUnreachable
from screenshot_service.egress.policy import EgressPolicy
from screenshot_service.egress.resolver import StaticResolver, SystemResolver, check_target
from screenshot_service.egress.urls import MAX_URL_LENGTH, parse_target_url

POLICY = EgressPolicy.from_config(EgressConfig())
RESOLVER = StaticResolver({"rebind.test": "127.0.0.1", "example.com": "93.184.216.34"})

# Every way of writing "this machine" that a browser would accept, or that a
# lax parser would read differently from the browser.
LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7F000001/",
    "http://0x7f.0.0.1/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://0177.1/",
    "http://127.000.000.001/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://127.0.0.1./",
    "http://127.0.0.1:8080/",
    "HTTP://127.0.0.1/",
    "http://0/",
    "http://0x0/",
    "http://00000/",
    "http://0.0.0.0/",
    "http://0.0.0.0:8000/",
    "http://[::1]/",
    "http://[::]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[::127.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[::1%25lo]/",
    "http://localhost/",
    "http://localhost./",
    "http://LOCALHOST/",
    "http://LocalHost:8000/",
    "http://foo.localhost/",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # full-width digits
    "http://127\u30020\u30020\u30021/",  # ideographic full stops
    "http://rebind.test/",  # DNS answer is loopback
    "http://user@127.0.0.1/",
    "http://user:pass@127.0.0.1/",
    "http://google.com@127.0.0.1/",
    "http://google.com:80@127.0.0.1/",
    "http://127.0.0.1\\@good.com/",
    "http://127.0.0.1%2f/",
    "http://%31%32%37.0.0.1/",
    "http://127.0.0.1\t/",
    "http://127.0.0.1 /",
    "http://127.0.0.1\n/",
    "http://127. 0.0.1/",
    "http:\\\\127.0.0.1/",
    "http:/127.0.0.1/",
    "http:127.0.0.1/",
    "http:///127.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0xa9fea9fe/",
    "http://[fd00:ec2::254]/",
]


@pytest.mark.parametrize("raw", LOOPBACK_SPELLINGS)
async def test_local_spelling_is_refused(raw: str) -> None:
    with pytest.raises((InvalidUrl, EgressBlocked)):
        await check_target(raw, POLICY, RESOLVER)


NORMALISED_TO_LOOPBACK = [
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.0.0.1/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://127.000.000.001/",
    "http://127.1/",
    "http://127.0.1/",
    "http://127.0.0.1./",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",
]


@pytest.mark.parametrize("raw", NORMALISED_TO_LOOPBACK)
def test_ipv4_spellings_normalise_before_the_check(raw: str) -> None:
    target = parse_target_url(raw)
    assert (target.host, target.ip, target.url) == (
        "127.0.0.1",
        ipaddress.IPv4Address("127.0.0.1"),
        "http://127.0.0.1/",
    )


@pytest.mark.parametrize("raw", ["http://0/", "http://0x0/", "http://00000/", "http://0.0.0.0/"])
def test_zero_spellings_are_the_unspecified_address(raw: str) -> None:
    assert parse_target_url(raw).host == "0.0.0.0"


FORBIDDEN_SCHEMES = [
    ("file:///etc/passwd", "file"),
    ("FILE:///etc/passwd", "file"),
    ("chrome://settings", "chrome"),
    ("view-source:http://example.com/", "view-source"),
    ("data:text/html,<h1>hi</h1>", "data"),
    ("javascript:alert(1)", "javascript"),
    ("ftp://example.com/", "ftp"),
    ("gopher://example.com/", "gopher"),
    ("ws://example.com/", "ws"),
    ("wss://example.com/", "wss"),
    ("about:blank", "about"),
    ("blob:http://example.com/5d0c0a6e", "blob"),
]


@pytest.mark.parametrize(("raw", "scheme"), FORBIDDEN_SCHEMES)
def test_forbidden_scheme(raw: str, scheme: str) -> None:
    with pytest.raises(InvalidUrl, match=f"scheme '{scheme}' is not allowed"):
        parse_target_url(raw)


# --------------------------------------------------------------------------- one test per rule


def rejects(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidUrl) as info:
        parse_target_url(raw)
    assert fragment in info.value.message, info.value.message


def test_no_scheme() -> None:
    rejects("example.com/page", "must start with http:// or https://")


def test_empty() -> None:
    rejects("   ", "non-empty")


def test_userinfo() -> None:
    rejects("http://user@example.com/", "user info")


def test_userinfo_disguising_host() -> None:
    rejects("http://example.com@127.0.0.1/", "user info")


def test_backslash_in_authority() -> None:
    rejects("http://127.0.0.1\\@example.com/", "backslash")


def test_backslash_in_path() -> None:
    rejects("http://example.com/a\\b", "backslash")


def test_whitespace_in_host() -> None:
    rejects("http://exam ple.com/", "whitespace")


def test_unicode_whitespace_in_host() -> None:
    rejects("http://example.com\u3000/", "whitespace")


def test_control_characters() -> None:
    rejects("http://example.com/a\tb", "control characters")
    rejects("http://example.com/\x00", "control characters")


def test_percent_encoding_in_host() -> None:
    rejects("http://ex%61mple.com/", "percent-encode")


def test_zone_id() -> None:
    rejects("http://[fe80::1%25eth0]/", "zone ids")


def test_too_long() -> None:
    rejects("http://example.com/" + "a" * MAX_URL_LENGTH, "longer than 8192")


def test_no_host() -> None:
    rejects("http:///path", "must have the form")
    rejects("http://:80/", "has no host")


@pytest.mark.parametrize("port", ["0", "65536", "99999", "abc", "-1", "\u0668\u0660"])
def test_bad_port(port: str) -> None:
    rejects(f"http://example.com:{port}/", "invalid port")


@pytest.mark.parametrize(
    "host", ["1.2.3.4.5", "256.1.1.1", "1.2.3.256", "1.2.65536", "09.1.1.1", "foo.127", "1..1"]
)
def test_malformed_ipv4(host: str) -> None:
    with pytest.raises(InvalidUrl, match=r"IPv4|octal"):
        parse_target_url(f"http://{host}/")


@pytest.mark.parametrize("host", ["[::1", "[::1]x", "[1:2:3:4:5:6:7:8:9]", "[v1.x]", "::1"])
def test_malformed_ipv6(host: str) -> None:
    with pytest.raises(InvalidUrl):
        parse_target_url(f"http://{host}/")


@pytest.mark.parametrize(
    "host", ["a!b.com", "a..b.com", "-a.com", "a" * 64 + ".com", "a\uff0fb.com", "a\uff05b.com", "\u2488.com"]
)
def test_invalid_host_name(host: str) -> None:
    with pytest.raises(InvalidUrl):
        parse_target_url(f"http://{host}/")


def test_message_names_the_field() -> None:
    with pytest.raises(InvalidUrl) as info:
        parse_target_url("ftp://example.com/", what="webhook_url")
    assert info.value.message.startswith("webhook_url ")
    assert info.value.details == {"field": "webhook_url"}


# --------------------------------------------------------------------------- good URLs

GOOD = [
    ("https://Example.COM", "https://example.com/", "example.com", 443),
    ("HTTP://example.com:8080/a/b?c=d#e", "http://example.com:8080/a/b?c=d#e", "example.com", 8080),
    ("http://example.com:80/", "http://example.com/", "example.com", 80),
    ("http://example.com:443/", "http://example.com:443/", "example.com", 443),
    ("http://EXAMPLE.com./x", "http://example.com/x", "example.com", 80),
    ("  https://example.com/  ", "https://example.com/", "example.com", 443),
    ("https://b\u00fccher.de/\u00fc", "https://xn--bcher-kva.de/%C3%BC", "xn--bcher-kva.de", 443),
    ("http://example.com/a b?q=x y", "http://example.com/a%20b?q=x%20y", "example.com", 80),
    ("http://example.com/?q=%41", "http://example.com/?q=%41", "example.com", 80),
    ("http://example.com?x", "http://example.com/?x", "example.com", 80),
    ("http://my_host.example.com/", "http://my_host.example.com/", "my_host.example.com", 80),
    ("http://8.8.8.8:80", "http://8.8.8.8/", "8.8.8.8", 80),
    ("http://134744072/", "http://8.8.8.8/", "8.8.8.8", 80),
    ("http://[2606:4700:4700:0::1111]/", "http://[2606:4700:4700::1111]/", "2606:4700:4700::1111", 80),
]


@pytest.mark.parametrize(("raw", "url", "host", "port"), GOOD)
def test_good_url_normalises(raw: str, url: str, host: str, port: int) -> None:
    target = parse_target_url(raw)
    assert (target.url, target.host, target.port) == (url, host, port)
    assert target.scheme == url.split(":")[0]


def test_authority_for_host_header() -> None:
    assert parse_target_url("http://[::1]:8080/").authority == "[::1]:8080"
    assert parse_target_url("https://example.com:443/").authority == "example.com"


# --------------------------------------------------------------------------- check_target


async def test_public_ip_literal_needs_no_dns() -> None:
    resolver = StaticResolver({})
    target = await check_target("http://8.8.8.8/", POLICY, resolver)
    assert target.ip == ipaddress.IPv4Address("8.8.8.8") and resolver.calls == []


async def test_public_name_passes() -> None:
    target = await check_target("https://example.com/x", POLICY, RESOLVER)
    assert target.host == "example.com"


async def test_rebinding_name_is_blocked_with_a_clear_message() -> None:
    with pytest.raises(EgressBlocked) as info:
        await check_target("http://rebind.test/", POLICY, RESOLVER, what="webhook_url")
    assert info.value.message == (
        "webhook_url rebind.test resolves to a blocked address: loopback address 127.0.0.1"
    )


async def test_one_bad_answer_taints_the_name() -> None:
    resolver = StaticResolver({"mixed.test": ["93.184.216.34", "10.0.0.1"]})
    with pytest.raises(EgressBlocked, match=r"private address 10\.0\.0\.1"):
        await check_target("http://mixed.test/", POLICY, resolver)


async def test_localhost_never_asks_dns() -> None:
    resolver = StaticResolver({"foo.localhost": "93.184.216.34"})  # a lying resolver is not consulted
    with pytest.raises(EgressBlocked, match="loopback"):
        await check_target("http://foo.localhost/", POLICY, resolver)
    assert resolver.calls == []


async def test_unresolvable_name_is_unreachable() -> None:
    with pytest.raises(TargetUnreachable, match=r"could not resolve nowhere\.test"):
        await check_target("http://nowhere.test/", POLICY, RESOLVER)


async def test_allow_entry_opens_its_port_only() -> None:
    policy = EgressPolicy.from_config(EgressConfig(allow=["127.0.0.1:8080"]))
    await check_target("http://rebind.test:8080/", policy, RESOLVER)
    with pytest.raises(EgressBlocked):
        await check_target("http://rebind.test:8081/", policy, RESOLVER)


async def test_static_resolver_fallback() -> None:
    inner = StaticResolver({"b.test": "93.184.216.34"})
    outer = StaticResolver({"a.test": ["93.184.216.34", "93.184.216.34"]}, fallback=inner)
    assert await outer.resolve("A.TEST.", 80) == [ipaddress.IPv4Address("93.184.216.34")]
    assert await outer.resolve("b.test", 80) == [ipaddress.IPv4Address("93.184.216.34")]


async def test_system_resolver_literal_needs_no_network() -> None:
    assert await SystemResolver().resolve("127.0.0.1", 80) == [ipaddress.IPv4Address("127.0.0.1")]
