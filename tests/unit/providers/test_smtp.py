"""SMTP adapter against a real local SMTP server (aiosmtpd): content, AUTH, reply classes, STARTTLS, TLS."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers import ChannelConfig, OutboundMessage
from herald.providers.smtp.send import SmtpChannel, SmtpCredentials

# The test server requires AUTH on plain connections too (aiosmtpd warns about that, rightly, in production).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

USER, PASSWORD = "herald", "s3cret-smtp-password"


@dataclass
class Handler:
    """Records delivered messages; refuses chosen recipients with chosen replies."""

    refuse: dict[str, str] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        reply = self.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "message": message_from_bytes(envelope.original_content),
                "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                "authenticated": session.authenticated,
            }
        )
        return "250 Message accepted for delivery"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cert:
    pem: str
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "herald test smtp")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    (folder / "cert.pem").write_text(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Cert(pem, folder / "cert.pem", folder / "key.pem")


@dataclass
class Server:
    handler: Handler
    port: int


def _serve(handler: Handler, **options: Any) -> Iterator[Server]:
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, server_hostname="smtp.test",
        authenticator=authenticator, auth_required=True, **options,
    )  # fmt: skip
    controller.start()
    try:
        yield Server(handler, port)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[Server]:
    """Plain SMTP (no TLS) that requires AUTH."""
    handler = Handler(refuse={"nobody@example.org": "550 5.1.1 No such user", "busy@example.org": "451 4.3.0 Try later"})  # fmt: skip
    yield from _serve(handler, auth_require_tls=False)


@pytest.fixture
def starttls_server(cert: Cert) -> Iterator[Server]:
    """SMTP offering STARTTLS, refusing AUTH and mail before it."""
    yield from _serve(
        Handler(), tls_context=cert.server_context(), require_starttls=True, auth_require_tls=True
    )


@pytest.fixture
def tls_server(cert: Cert) -> Iterator[Server]:
    """SMTP over implicit TLS (as on port 465); aiosmtpd only sees STARTTLS as TLS, hence auth_require_tls off."""
    yield from _serve(Handler(), ssl_context=cert.server_context(), auth_require_tls=False)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def channel(http: httpx.AsyncClient, port: int, **credentials: Any) -> SmtpChannel:
    creds = {
        "host": "127.0.0.1", "port": port, "username": USER, "password": PASSWORD,
        "from_email": "alerts@herald.example", "starttls": False, **credentials,
    }  # fmt: skip
    config = ChannelConfig(
        id="chn_smtp", tenant_id="ten_test", platform="email", provider="smtp", credentials=creds
    )
    adapter = SmtpChannel(config, http)
    adapter.timeout = 5.0  # type: ignore[misc]
    return adapter


def email_to(
    recipient: str, content: str = "Hello", subject: str | None = None, *, id: str = "msg_1", **extra: Any
) -> OutboundMessage:
    return OutboundMessage(
        id=id,
        tenant_id="ten_test",
        platform="email",
        recipient_id=recipient,
        content=content,
        subject=subject,
        **extra,
    )


async def test_sends_the_email_and_returns_its_message_id(
    smtp_server: Server, http: httpx.AsyncClient
) -> None:
    smtp = channel(http, smtp_server.port, from_name="Herald Alerts")
    message_id = await smtp.send(email_to("ada@example.org", "Your report is ready.\nSee you.", "Report"))
    (received,) = smtp_server.handler.received
    assert received["mail_from"] == "alerts@herald.example"
    assert received["rcpt_tos"] == ["ada@example.org"]
    assert received["authenticated"] is True
    email: Message = received["message"]
    assert email["From"] == "Herald Alerts <alerts@herald.example>"
    assert email["To"] == "ada@example.org"
    assert email["Subject"] == "Report"
    assert email["Message-ID"] == message_id
    assert message_id.startswith("<")
    assert message_id.endswith("@herald.example>")
    assert email.get_content_type() == "text/plain"
    payload = email.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.decode().replace("\r\n", "\n").strip() == "Your report is ready.\nSee you."


async def test_subject_defaults_and_ids_are_unique(smtp_server: Server, http: httpx.AsyncClient) -> None:
    smtp = channel(http, smtp_server.port)
    first = await smtp.send(email_to("ada@example.org", id="msg_0190c0ffee0000000000000000aa"))
    second = await smtp.send(email_to("ada@example.org", id="msg_0190c0ffee0000000000000000ab"))
    again = await smtp.send(email_to("ada@example.org", id="msg_0190c0ffee0000000000000000aa"))
    assert first != second
    assert again == first  # a retry of one message carries its id: the reader's client shows one email
    assert first.startswith("<msg_0190c0ffee0000000000000000aa@")
    assert smtp_server.handler.received[0]["message"]["Subject"] == "Message"


async def test_a_conversation_reply_goes_out_threaded(smtp_server: Server, http: httpx.AsyncClient) -> None:
    context = {"reply_to": "<r2@example.org>", "references": ["<root@example.com>", "<r1@example.org>"],
               "subject": "Re: RE: Mower will not start"}  # fmt: skip
    await channel(http, smtp_server.port).send(
        email_to("ada@example.org", "Bring it in.", reply_context=context)
    )
    sent = smtp_server.handler.received[0]["message"]
    assert sent["Subject"] == "Re: Mower will not start"
    assert sent["In-Reply-To"] == "<r2@example.org>"
    assert sent["References"] == "<root@example.com> <r1@example.org> <r2@example.org>"


async def test_a_reply_with_its_own_subject_keeps_it_and_odd_context_adds_no_headers(
    smtp_server: Server, http: httpx.AsyncClient
) -> None:
    context = {"reply_to": "not a message id\r\nBcc: x@evil.example", "subject": "Hi\r\nBcc: x@evil.example"}
    smtp = channel(http, smtp_server.port)
    await smtp.send(email_to("ada@example.org", subject="Your quote", reply_context=context))
    await smtp.send(email_to("ada@example.org", reply_context=context))
    first, second = (r["message"] for r in smtp_server.handler.received)
    assert first["Subject"] == "Your quote"
    assert first["In-Reply-To"] is None
    assert second["Subject"] == "Re: Hi Bcc: x@evil.example"  # one line: no header injected
    assert second["Bcc"] is None
    assert smtp_server.handler.received[1]["rcpt_tos"] == ["ada@example.org"]


async def test_failed_auth_is_permanent(smtp_server: Server, http: httpx.AsyncClient) -> None:
    smtp = channel(http, smtp_server.port, password="wrong-password")
    with pytest.raises(PermanentDeliveryError, match="535"):
        await smtp.send(email_to("ada@example.org"))
    assert smtp_server.handler.received == []


async def test_unknown_recipient_550_is_permanent(smtp_server: Server, http: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentDeliveryError, match="550"):
        await channel(http, smtp_server.port).send(email_to("nobody@example.org"))


async def test_transient_451_is_retryable(smtp_server: Server, http: httpx.AsyncClient) -> None:
    with pytest.raises(RetryableDeliveryError, match="451"):
        await channel(http, smtp_server.port).send(email_to("busy@example.org"))


async def test_connection_refused_is_retryable(http: httpx.AsyncClient) -> None:
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await channel(http, free_port()).send(email_to("ada@example.org"))


async def test_a_server_that_never_answers_times_out_retryably(http: httpx.AsyncClient) -> None:
    with socket.socket() as listener:  # the kernel accepts the connection; no greeting ever comes
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        smtp = channel(http, listener.getsockname()[1])
        smtp.timeout = 0.5  # type: ignore[misc]
        with pytest.raises(RetryableDeliveryError, match="timed out"):
            await smtp.send(email_to("ada@example.org"))


async def test_starttls_with_the_servers_certificate_trusted(
    starttls_server: Server, cert: Cert, http: httpx.AsyncClient
) -> None:
    smtp = channel(http, starttls_server.port, starttls=True, ca_cert=cert.pem)
    message_id = await smtp.send(email_to("ada@example.org", "Over TLS"))
    (received,) = starttls_server.handler.received
    assert received["tls"] is True
    assert received["message"]["Message-ID"] == message_id


async def test_starttls_with_an_untrusted_certificate_is_permanent(
    starttls_server: Server, http: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentDeliveryError, match="certificate"):
        await channel(http, starttls_server.port, starttls=True).send(email_to("ada@example.org"))
    assert starttls_server.handler.received == []


async def test_plain_connection_to_a_server_requiring_starttls_is_permanent(
    starttls_server: Server, http: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentDeliveryError):
        await channel(http, starttls_server.port, starttls=False).send(email_to("ada@example.org"))


async def test_starttls_required_but_not_offered_is_permanent(
    smtp_server: Server, http: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
        await channel(http, smtp_server.port, starttls=True).send(email_to("ada@example.org"))


async def test_implicit_tls(tls_server: Server, cert: Cert, http: httpx.AsyncClient) -> None:
    smtp = channel(http, tls_server.port, use_tls=True, starttls=False, ca_cert=cert.pem)
    await smtp.send(email_to("ada@example.org", "Over implicit TLS"))
    (received,) = tls_server.handler.received
    assert received["tls"] is True


async def test_a_line_break_in_the_recipient_is_permanent(http: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentDeliveryError, match="cannot build"):
        await channel(http, free_port()).send(email_to("ada@example.org\nBcc: eve@example.org"))


def test_credentials_defaults_and_checks() -> None:
    creds = SmtpCredentials.model_validate({"host": "smtp.example.com", "from_email": "a@example.com"})
    assert (creds.port, creds.starttls, creds.use_tls, creds.username) == (587, True, False, None)
    implicit = SmtpCredentials.model_validate(
        {"host": "h", "port": 465, "use_tls": True, "from_email": "a@b.co"}
    )
    assert implicit.starttls is False
    with pytest.raises(ValidationError, match="both username and password"):
        SmtpCredentials.model_validate({"host": "h", "username": "u", "from_email": "a@b.co"})


def test_declares_email_without_length_limit() -> None:
    assert SmtpChannel.platforms == frozenset({"email"})
    assert SmtpChannel.max_length is None
    assert SmtpChannel.split_long is False


def test_credentials_never_show_in_repr(http: httpx.AsyncClient) -> None:
    smtp = channel(http, 2525)
    assert PASSWORD not in repr(smtp)
    assert PASSWORD not in repr(smtp.config)
    assert PASSWORD not in repr(SmtpCredentials.model_validate(smtp.config.credentials))
