"""Mailboxes through the API, against a real dovecot: an email interface's inbound IMAP mailbox is probed when
saved (a 422 naming the field with the server's reason), its secret is sealed and never shown, it is audited,
admin-only, another tenant's interface is 404, and its state shows on GET /api/v1/interfaces."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from herald.admin.tenants import create_api_key, get_or_create_tenant
from herald.runtime import Runtime
from herald.storage.models import AuditEntry, Mailbox
from herald.web.api.schemas import MailboxOut, MailboxStateOut
from tests.conftest import new_tenant
from tests.support.dovecot import Account, Dovecot

PASSWORD = "pw-Secret-1"


def problems(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {error["field"]: error["message"] for error in response.json()["errors"]}


async def email_interface(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    body = {"platform": "email", "provider": "smtp", "name": "sales mail",
            "credentials": {"host": "smtp.example.com", "port": 587, "from_email": "sales@dealer.example"}}  # fmt: skip
    response = await client.post("/api/v1/channels", json=body, headers=auth)
    assert response.status_code == 201, response.text
    channel_id: str = response.json()["id"]
    return channel_id


def settings(account: Account, **extra: Any) -> dict[str, Any]:
    return {"host": account.host, "port": account.port, "security": "none", "username": account.user,
            "password": account.password, **extra}  # fmt: skip


@pytest.fixture
def account(dovecot: Dovecot, request: pytest.FixtureRequest) -> Account:
    return dovecot.add_user(f"u{abs(hash(request.node.nodeid)) % 10**9}")


async def test_put_get_delete_a_mailbox(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot
) -> None:
    channel_id = await email_interface(client, auth)
    url = f"/api/v1/interfaces/{channel_id}/mailbox"
    created = await client.put(url, json=settings(account), headers=auth)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["folder"] == "INBOX"
    assert body["poll_interval_seconds"] == 60
    assert body["idle"] is True
    assert body["after_processing"] == "flag"
    assert body["auth"] == "password"
    assert body["state"]["mode"] == "idle"
    assert body["state"]["messages_today"] == 0
    assert body["state"]["last_uid"] == 0
    assert body["state"]["uidvalidity"] is None
    got = await client.get(url, headers=auth)
    # Exactly the documented keys (the contract test's key-for-key check, which has no IMAP server to save one).
    assert set(got.json()) == set(MailboxOut.model_fields)
    assert set(got.json()["state"]) == set(MailboxStateOut.model_fields)
    listed = await client.get("/api/v1/interfaces", headers=auth)
    for text in (created.text, got.text, listed.text):
        assert PASSWORD not in text
        assert "password" not in text.replace('"auth":"password"', "")
    (item,) = [i for i in listed.json()["items"] if i["id"] == channel_id]
    assert item["mailbox"]["id"] == body["id"]
    assert item["mailbox"]["state"]["mode"] == "idle"

    # Replaced: no secret given keeps the stored one (same server and user); 200.
    replaced = await client.put(url, json={k: v for k, v in settings(account, poll_interval_seconds=30).items()
                                           if k != "password"}, headers=auth)  # fmt: skip
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["poll_interval_seconds"] == 30
    assert replaced.json()["id"] == body["id"]
    async with rt.sessions() as session:
        row = (await session.execute(select(Mailbox))).scalar_one()
        assert PASSWORD.encode() not in row.credentials  # sealed
        assert rt.credentials.open(row.credentials)["password"] == PASSWORD
        actions = [a.action for a in (await session.execute(select(AuditEntry))).scalars()]
        audit = " ".join(str(a.detail) for a in (await session.execute(select(AuditEntry))).scalars())
    assert "mailbox.created" in actions
    assert "mailbox.replaced" in actions
    assert PASSWORD not in audit

    assert (await client.delete(url, headers=auth)).status_code == 204
    assert (await client.get(url, headers=auth)).status_code == 404
    async with rt.sessions() as session:
        assert "mailbox.deleted" in [a.action for a in (await session.execute(select(AuditEntry))).scalars()]


async def test_the_server_is_probed_and_the_failing_field_named(
    client: httpx.AsyncClient, auth: dict[str, str], account: Account, dovecot: Dovecot
) -> None:
    url = f"/api/v1/interfaces/{await email_interface(client, auth)}/mailbox"
    wrong = problems(await client.put(url, json=settings(account, password="nope"), headers=auth))
    assert "authentication failed" in wrong["password"].lower()
    assert "nope" not in str(wrong)
    folder = problems(await client.put(url, json=settings(account, folder="Nowhere"), headers=auth))
    assert "Nowhere" in folder["folder"]
    closed = problems(await client.put(url, json=settings(account, port=1), headers=auth))
    assert "cannot connect" in closed["host"]
    move = problems(await client.put(url, json=settings(account, after_processing="move", move_to="Done"),
                                     headers=auth))  # fmt: skip
    assert "Done" in move["move_to"]
    assert "move_to" in problems(
        await client.put(url, json=settings(account, after_processing="move"), headers=auth)
    )
    both = settings(account, oauth2_token="tok")
    assert "oauth2_token" in problems(await client.put(url, json=both, headers=auth))
    fast = settings(account, poll_interval_seconds=1)
    assert "poll_interval_seconds" in problems(await client.put(url, json=fast, headers=auth))
    no_secret = {k: v for k, v in settings(account).items() if k != "password"}
    assert "password" in problems(await client.put(url, json=no_secret, headers=auth))
    # TLS without trusting the server's own certificate: refused, naming security; with ca_cert: accepted.
    tls = settings(account, host="localhost", port=account.tls_port, security="tls")
    assert "certificate" in problems(await client.put(url, json=tls, headers=auth))["security"]
    trusted = await client.put(url, json=tls | {"ca_cert": dovecot.ca_file.read_text()}, headers=auth)
    assert trusted.status_code == 201, trusted.text
    starttls = settings(account, host="localhost", security="starttls", ca_cert=dovecot.ca_file.read_text())
    assert (await client.put(url, json=starttls, headers=auth)).status_code == 200


async def test_only_email_interfaces_of_the_tenant_and_admin_keys(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account
) -> None:
    channel_id = await email_interface(client, auth)
    url = f"/api/v1/interfaces/{channel_id}/mailbox"
    other = await new_tenant(rt, "globex")
    assert (await client.put(url, json=settings(account), headers=other)).status_code == 404
    saved = await client.put(url, json=settings(account), headers=auth)
    assert saved.status_code == 201, saved.text
    assert (await client.get(url, headers=other)).status_code == 404
    assert (await client.delete(url, headers=other)).status_code == 404
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "acme")
        key = await create_api_key(session, tenant, is_admin=False)
    plain = {"Authorization": f"Bearer {key}"}
    assert (await client.get(url, headers=plain)).status_code == 403
    slack = {"platform": "slack", "provider": "webhook", "name": "relay",
             "credentials": {"url": "https://relay.example/x", "secret": "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3ODkw"}}  # fmt: skip
    slack_id = (await client.post("/api/v1/channels", json=slack, headers=auth)).json()["id"]
    not_email = problems(
        await client.put(f"/api/v1/interfaces/{slack_id}/mailbox", json=settings(account), headers=auth)
    )
    assert "email interface" in not_email["channel_id"]


async def test_unencrypted_only_to_loopback_outside_development(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account
) -> None:
    rt.settings = rt.settings.model_copy(update={"env": "production"})
    url = f"/api/v1/interfaces/{await email_interface(client, auth)}/mailbox"
    remote = problems(await client.put(url, json=settings(account, host="imap.example.com"), headers=auth))
    assert "security" in remote
