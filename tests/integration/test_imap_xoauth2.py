"""XOAUTH2 against the real dovecot: its oauth2 passdb asks the harness's introspection endpoint about each token
(tests/support/dovecot.py). A mailbox saved with an OAuth2 token logs in with AUTHENTICATE XOAUTH2, an unknown
token is a 422 naming oauth2_token, and the follower takes mail with it."""

from __future__ import annotations

import httpx
import pytest

from herald.runtime import Runtime
from tests.integration.test_imap_follower import _count, following, until
from tests.integration.test_mailboxes import email_interface, problems
from tests.support.dovecot import Account, Dovecot, email


@pytest.fixture
def settings_overrides() -> dict[str, float]:
    return {"lease_seconds": 3.0}


@pytest.fixture
def account(dovecot: Dovecot, request: pytest.FixtureRequest) -> Account:
    return dovecot.add_user(f"x{abs(hash(request.node.nodeid)) % 10**9}")


async def test_a_mailbox_logs_in_with_an_oauth2_bearer(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot
) -> None:
    token = f"ya29.token-for-{account.user}"
    dovecot.grant_token(token, account.user)
    url = f"/api/v1/interfaces/{await email_interface(client, auth)}/mailbox"
    body = {"host": account.host, "port": account.port, "security": "none", "username": account.user}
    refused = problems(await client.put(url, json=body | {"oauth2_token": "ya29.unknown"}, headers=auth))
    assert "authentication failed" in refused["oauth2_token"]
    assert "ya29.unknown" in dovecot.introspections  # the server really asked about the token
    saved = await client.put(url, json=body | {"oauth2_token": token}, headers=auth)
    assert saved.status_code == 201, saved.text
    assert saved.json()["auth"] == "oauth2"
    assert token not in saved.text
    assert token not in (await client.get(url, headers=auth)).text
    assert token in dovecot.introspections
    dovecot.deliver(account, email(1), email(2))
    async with following(rt):
        await until(lambda: _count(rt, 2))
