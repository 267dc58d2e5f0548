"""The outbound guard: which addresses are refused and why, the allow-list, schemes, name resolution, the
request hook (redirects included), and that development leaves it off."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.core.config import Settings, load_settings
from herald.core.errors import ConfigError, ValidationFailed
from herald.core.netguard import BlockedDestination, OutboundGuard, refusal
from tests.conftest import SECRET


def guard(tmp_path: Path, env: str = "production", **overrides: Any) -> OutboundGuard:
    return OutboundGuard(settings(tmp_path, env, **overrides))


def settings(tmp_path: Path, env: str = "production", **overrides: Any) -> Settings:
    return load_settings(env=env, secret_key=SECRET, data_dir=tmp_path, **overrides)


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Fake DNS: host name -> addresses; other names do not resolve. The guard's real resolution path runs."""
    answers: dict[str, list[str]] = {}

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),  # cloud metadata
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("10.0.0.5", "a private address"),
        ("172.16.3.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("100.64.0.1", "in the shared address space 100.64.0.0/10"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.10", "a special-purpose address, not publicly routable"),  # documentation
        ("198.18.0.1", "a special-purpose address, not publicly routable"),  # benchmarking
        ("192.0.0.8", "a special-purpose address, not publicly routable"),
        ("fec0::1", "a special-purpose address, not publicly routable"),  # deprecated site-local
        ("2001:db8::1", "a special-purpose address, not publicly routable"),
        # IPv6 forms that reach an IPv4 address are judged by that address
        ("::ffff:10.0.0.5", "a private address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("64:ff9b::a9fe:a9fe", "a link-local address"),  # NAT64 of 169.254.169.254
        ("2002:a00:1::1", "a 6to4 address embedding a private address"),
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    # NAT64 and IPv4-mapped forms of a public address pass too: IPv6-only hosts with DNS64 reach the web so
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://10.0.0.5/hook", "destination 10.0.0.5 is a private address"),
        ("https://[::1]:8443/", "destination ::1 is a loopback address"),
        (
            "http://[::ffff:169.254.169.254]/latest/meta-data",
            "destination ::ffff:169.254.169.254 is a link-local",
        ),
        ("http://0x7f.1/", "destination 0x7f.1 (127.0.0.1) is a loopback address"),  # inet_aton forms resolve
        ("http://2130706433/", "destination 2130706433 (127.0.0.1) is a loopback address"),
    ],
)
async def test_production_refuses_literal_and_odd_forms(tmp_path: Path, url: str, shown: str) -> None:
    with pytest.raises(BlockedDestination, match="allow it with HERALD_OUTBOUND_ALLOW") as caught:
        await guard(tmp_path).check_url(url)
    assert str(caught.value).startswith(shown)


async def test_message_names_the_address_and_the_setting(tmp_path: Path) -> None:
    with pytest.raises(BlockedDestination) as caught:
        await guard(tmp_path).check_url("http://10.0.0.5/")
    expected = "destination 10.0.0.5 is a private address; allow it with HERALD_OUTBOUND_ALLOW"
    assert str(caught.value) == expected


@pytest.mark.parametrize("url", ["ftp://files.example/x", "file:///etc/passwd", "gopher://h.example/"])
async def test_only_http_and_https(tmp_path: Path, url: str) -> None:
    with pytest.raises(BlockedDestination, match="use http:// or https://"):
        await guard(tmp_path).check_url(url)


async def test_a_name_is_refused_when_any_of_its_addresses_is_not_public(
    tmp_path: Path, lookups: dict[str, list[str]]
) -> None:
    lookups["api.example"] = ["93.184.215.14"]
    lookups["mixed.example"] = ["93.184.215.14", "10.1.2.3"]
    lookups["v6.example"] = ["2606:4700:4700::1111", "fd00::7"]
    checker = guard(tmp_path)
    await checker.check_url("https://api.example/v1")
    with pytest.raises(
        BlockedDestination, match=r"^destination mixed.example \(10.1.2.3\) is a private address"
    ):
        await checker.check_url("https://mixed.example/")
    with pytest.raises(BlockedDestination, match=r"v6.example \(fd00::7\) is a private address"):
        await checker.check_host("v6.example", 587)


async def test_allow_list_cidrs_and_host_names(tmp_path: Path, lookups: dict[str, list[str]]) -> None:
    lookups["gateway.internal"] = ["10.9.8.7"]
    lookups["relay.corp.example"] = ["192.168.5.5"]
    lookups["other.internal"] = ["10.9.8.7"]
    lookups["db.internal"] = ["10.20.0.4"]
    lookups["corp.example"] = lookups["corp.example.evil"] = ["192.168.5.6"]
    checker = guard(
        tmp_path, outbound_allow="127.0.0.1/32, gateway.internal, *.corp.example, 10.20.0.0/16, fd00::/8"
    )
    await checker.check_url("http://127.0.0.1:8080/hook")
    await checker.check_url("http://[::ffff:127.0.0.1]/")  # the mapped form of an allowed address
    # names compare case-insensitively, with or without the root dot
    await checker.check_url("http://GATEWAY.internal./send")
    await checker.check_url("https://relay.corp.example/")
    await checker.check_url("http://db.internal/")  # resolves into an allowed network
    await checker.check_url("http://[fd00::5]/")
    await checker.check_url("http://[64:ff9b::a14:4]/")  # NAT64 of 10.20.0.4
    await checker.check_host("gateway.internal", 25)
    # "*.corp.example" covers names below it only
    for url in ("http://127.0.0.2/", "http://other.internal/", "http://corp.example/", "http://corp.example.evil/",
                "http://10.21.0.1/"):  # fmt: skip
        with pytest.raises(BlockedDestination):
            await checker.check_url(url)


async def test_lookups_are_cached_briefly(tmp_path: Path, lookups: dict[str, list[str]]) -> None:
    lookups["api.example"] = ["93.184.215.14"]
    checker = guard(tmp_path)
    await checker.check_url("https://api.example/")
    lookups["api.example"] = ["10.0.0.1"]  # a changed answer shows once the cache entry expires
    await checker.check_url("https://api.example/")
    with pytest.raises(BlockedDestination):
        await guard(tmp_path).check_url("https://api.example/")


async def test_development_allows_everything(tmp_path: Path) -> None:
    checker = guard(tmp_path, env="development")
    assert not checker.active
    await checker.check_url("http://127.0.0.1:8001/fake")
    await checker.check_url("gopher://10.0.0.1/")
    await checker.check_host("localhost", 25)
    await checker.validate_url("http://169.254.169.254/", field="url")


async def test_the_setting_overrides_the_environment(tmp_path: Path) -> None:
    assert guard(tmp_path, env="development", outbound_guard=True).active
    assert not guard(tmp_path, env="production", outbound_guard=False).active
    with pytest.raises(BlockedDestination):
        await guard(tmp_path, env="development", outbound_guard=True).check_url("http://127.0.0.1/")
    await guard(tmp_path, env="production", outbound_guard=False).check_url("http://127.0.0.1/")


async def test_validation_names_the_field(tmp_path: Path, lookups: dict[str, list[str]]) -> None:
    checker = guard(tmp_path)
    with pytest.raises(ValidationFailed, match="10.0.0.5 is a private address") as caught:
        await checker.validate_url("http://10.0.0.5/events", field="url")
    assert caught.value.field == "url"
    with pytest.raises(ValidationFailed, match="loopback") as caught:
        await checker.validate_host("127.0.0.1", 587, field="credentials.host")
    assert caught.value.field == "credentials.host"


async def test_unresolvable_hosts_fail_validation_in_production_only(
    tmp_path: Path, lookups: dict[str, list[str]]
) -> None:
    with pytest.raises(ValidationFailed, match="cannot resolve nowhere.example") as caught:
        await guard(tmp_path).validate_url("https://nowhere.example/hook", field="callback_url")
    assert caught.value.field == "callback_url"
    # forced on in development, a host that does not exist yet is accepted (and refused at send time if bad)
    forced = guard(tmp_path, env="development", outbound_guard=True)
    await forced.validate_url("https://nowhere.example/hook", field="callback_url")
    await forced.validate_host("mail.nowhere.example", 25, field="credentials.host")
    with pytest.raises(OSError, match="Name or service not known"):
        await forced.check_host("mail.nowhere.example", 25)  # what connecting would raise


def redirecting(target: str, seen: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "93.184.215.14":
            return httpx.Response(302, headers={"location": target})
        return httpx.Response(200, text="inside")

    return httpx.MockTransport(handler)


async def test_request_hook_refuses_redirects_to_blocked_addresses(tmp_path: Path) -> None:
    checker = guard(tmp_path)
    seen: list[str] = []
    hooks = {"request": [checker.check_request]}
    async with httpx.AsyncClient(
        transport=redirecting("http://10.0.0.1/admin", seen), event_hooks=hooks
    ) as http:
        with pytest.raises(BlockedDestination, match="10.0.0.1 is a private address") as caught:
            await http.get("https://93.184.215.14/start", follow_redirects=True)
        assert caught.value.request.url == "http://10.0.0.1/admin"
        assert isinstance(caught.value, httpx.TransportError)
        with pytest.raises(BlockedDestination):
            await http.get("http://127.0.0.1/")
    assert seen == ["https://93.184.215.14/start"]  # the blocked hop was never sent


async def test_request_hook_turns_a_failed_lookup_into_a_connect_error(
    tmp_path: Path, lookups: dict[str, list[str]]
) -> None:
    hooks = {"request": [guard(tmp_path).check_request]}
    async with httpx.AsyncClient(transport=redirecting("/", []), event_hooks=hooks) as http:
        with pytest.raises(httpx.ConnectError, match="cannot resolve nowhere.example") as caught:
            await http.get("https://nowhere.example/")
    assert not isinstance(caught.value, BlockedDestination)  # transient: callers retry it


# --------------------------------------------------------------------------- settings


def test_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(
        "HERALD_OUTBOUND_ALLOW", " 10.0.0.0/8,Relay.Internal. ,, *.corp.example,::1,192.168.1.7"
    )
    monkeypatch.setenv("HERALD_OUTBOUND_GUARD", "true")
    loaded = load_settings(data_dir=tmp_path)
    assert loaded.outbound_allow == [
        "10.0.0.0/8", "relay.internal", "*.corp.example", "::1/128", "192.168.1.7/32"
    ]  # fmt: skip
    assert loaded.outbound_guard is True
    assert loaded.outbound_guard_active


def test_guard_defaults_follow_the_environment(tmp_path: Path) -> None:
    assert settings(tmp_path).outbound_guard_active
    assert not settings(tmp_path, "development").outbound_guard_active
    assert settings(tmp_path).outbound_allow == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.5/8", "'10.0.0.5/8' is not a valid CIDR: 10.0.0.5/8 has host bits set"),
        ("999.1.1.1", "'999.1.1.1' is not a valid CIDR"),
        ("fe80::1%eth0", "zone indexes"),
        ("not a host", "'not a host' is neither a CIDR (10.0.0.0/8) nor a host name"),
        ("*", "'*' is neither a CIDR"),
    ],
)
def test_bad_allow_entries_are_refused_each_named(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match="HERALD_OUTBOUND_ALLOW") as caught:
        load_settings(data_dir=tmp_path, outbound_allow=f"10.0.0.0/8,{value}")
    assert message in str(caught.value)


def test_every_bad_entry_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(data_dir=tmp_path, outbound_allow="10.0.0.5/8,ok.example,bad host")
    assert "'10.0.0.5/8'" in str(caught.value)
    assert "'bad host'" in str(caught.value)
    assert "ok.example" not in str(caught.value)


# --------------------------------------------------------------------------- resolve_checked (connect to these)


class Answers:
    """An injected resolver: each lookup of a name pops its next answer (a DNS server that rebinds)."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {name.replace("_", "."): list(seq) for name, seq in answers.items()}
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers[host].pop(0)


async def test_resolve_checked_returns_the_checked_addresses(tmp_path: Path) -> None:
    answers = Answers(db_example_com=[["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]])
    checked = OutboundGuard(settings(tmp_path), resolver=answers)
    assert await checked.resolve_checked("db.example.com", 5432) == [
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    ]
    assert await checked.resolve_checked("93.184.215.14", 5432) == ["93.184.215.14"]
    assert answers.lookups == ["db.example.com"]


async def test_resolve_checked_refuses_a_name_with_any_blocked_address(tmp_path: Path) -> None:
    answers = Answers(db_example_com=[["93.184.215.14", "127.0.0.1"]])
    with pytest.raises(BlockedDestination, match=r"db\.example\.com \(127\.0\.0\.1\) is a loopback address"):
        await OutboundGuard(settings(tmp_path), resolver=answers).resolve_checked("db.example.com", 5432)
    with pytest.raises(BlockedDestination, match="localhost .* is a loopback address"):
        await guard(tmp_path).resolve_checked("localhost", 5432)  # the system resolver


async def test_one_lookup_serves_the_check_and_the_connection(tmp_path: Path) -> None:
    """A rebinding DNS server answers a public address, then a blocked one: the connection gets the first."""
    answers = Answers(db_example_com=[["93.184.215.14"], ["10.0.0.5"]])
    checked = OutboundGuard(settings(tmp_path), resolver=answers)
    assert await checked.resolve_checked("db.example.com", 5432) == ["93.184.215.14"]
    assert answers.lookups == ["db.example.com"]


async def test_resolve_checked_with_the_guard_off_still_answers_addresses(tmp_path: Path) -> None:
    answers = Answers(db_example_com=[["10.0.0.5"]])
    off = OutboundGuard(settings(tmp_path, "development"), resolver=answers)
    assert await off.resolve_checked("db.example.com", 5432) == ["10.0.0.5"]
    allowed = OutboundGuard(settings(tmp_path, outbound_allow="db.example.com"), resolver=Answers(
        db_example_com=[["10.0.0.5"]]
    ))  # fmt: skip
    assert await allowed.resolve_checked("db.example.com", 5432) == ["10.0.0.5"]
