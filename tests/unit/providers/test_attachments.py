"""Attachments at each email provider, in the provider's real format: SMTP as MIME multipart/mixed at a real local
SMTP server (aiosmtpd), SendGrid's ``attachments: [{content, filename, type, disposition}]`` and Resend's
``attachments: [{filename, content}]`` at their fakes, which refuse what the real APIs refuse."""

from __future__ import annotations

import base64
from email.message import Message

import httpx
import pytest

from herald.core.attachments import Attachment
from herald.core.errors import PermanentDeliveryError
from herald.providers import OutboundMessage
from tests.unit.providers import test_smtp
from tests.unit.providers.conftest import Fake, outbound
from tests.unit.providers.test_smtp import Server, channel

# The real SMTP server and HTTP client of the SMTP adapter's tests.
smtp_server = test_smtp.smtp_server
http = test_smtp.http

# The test server requires AUTH on plain connections (see test_smtp).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
RECEIPT = Attachment("receipt.pdf", "application/pdf", PDF)
NOTES = Attachment("notes.txt", "text/plain", "Merci, à bientôt\n".encode())
B64 = base64.b64encode(PDF).decode()


def email_with(*files: Attachment) -> OutboundMessage:
    return outbound(
        "ada@example.org", "Your receipt is attached.", platform="email", subject="Receipt", attachments=files
    )


async def test_smtp_sends_multipart_mixed_with_each_file(
    smtp_server: Server, http: httpx.AsyncClient
) -> None:
    smtp = channel(http, smtp_server.port)
    await smtp.send(email_with(RECEIPT, NOTES))
    (received,) = smtp_server.handler.received
    mail: Message = received["message"]
    assert mail.get_content_type() == "multipart/mixed"
    body, pdf, notes = mail.get_payload()  # type: ignore[misc]
    assert body.get_content_type() == "text/plain"
    assert body.get_payload(decode=True).decode().strip() == "Your receipt is attached."
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_filename() == "receipt.pdf"
    assert pdf["Content-Transfer-Encoding"] == "base64"
    assert pdf.get_payload(decode=True) == PDF
    assert notes.get_filename() == "notes.txt"
    assert notes.get_payload(decode=True) == NOTES.content


async def test_smtp_without_attachments_stays_plain_text(
    smtp_server: Server, http: httpx.AsyncClient
) -> None:
    await channel(http, smtp_server.port).send(email_with())
    (received,) = smtp_server.handler.received
    assert received["message"].get_content_type() == "text/plain"


async def test_sendgrid_gets_v3_attachments(fake: Fake) -> None:
    sendgrid = fake.adapter(
        "sendgrid", "email", {"api_key": "SG.test-key-123.abc", "from_email": "a@example.com"}
    )
    assert await sendgrid.send(email_with(RECEIPT))
    (request,) = fake.requests("sendgrid")
    assert request.json["attachments"] == [
        {"content": B64, "filename": "receipt.pdf", "type": "application/pdf", "disposition": "attachment"}
    ]
    assert request.json["content"] == [{"type": "text/plain", "value": "Your receipt is attached."}]


async def test_sendgrid_body_without_attachments_has_no_key(fake: Fake) -> None:
    sendgrid = fake.adapter(
        "sendgrid", "email", {"api_key": "SG.test-key-123.abc", "from_email": "a@example.com"}
    )
    await sendgrid.send(email_with())
    (request,) = fake.requests("sendgrid")
    assert "attachments" not in request.json


async def test_resend_gets_filename_and_base64_content(fake: Fake) -> None:
    resend = fake.adapter("resend", "email", {"api_key": "re_test_key_123", "from_email": "a@example.com"})
    assert await resend.send(email_with(RECEIPT, NOTES))
    (request,) = fake.requests("resend")
    assert request.json["attachments"] == [
        {"filename": "receipt.pdf", "content": B64},
        {"filename": "notes.txt", "content": base64.b64encode(NOTES.content).decode()},
    ]


@pytest.mark.parametrize(
    ("attachments", "field"),
    [
        ([{"filename": "a.pdf", "content": "not base64!"}], "attachments.0.content"),
        ([{"content": B64}], "attachments.0.filename"),
        ([{"content": B64, "filename": "a.pdf", "disposition": "sideways"}], "attachments.0.disposition"),
        ([{"content": B64, "filename": "a.pdf", "type": "pdf"}], "attachments.0.type"),
    ],
)
async def test_sendgrid_fake_refuses_malformed_attachments(
    fake: Fake, attachments: list[dict[str, str]], field: str
) -> None:
    body = {
        "personalizations": [{"to": [{"email": "ada@example.org"}]}], "from": {"email": "a@example.com"},
        "subject": "Hi", "content": [{"type": "text/plain", "value": "Hello"}], "attachments": attachments,
    }  # fmt: skip
    answer = await fake.http.post(
        f"{fake.origin}/v3/mail/send", json=body, headers={"authorization": "Bearer SG.test-key-123.abc"}
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == field


@pytest.mark.parametrize(
    "attachments",
    [[{"content": B64}], [{"filename": "a.pdf", "content": "%%%"}], {"filename": "a.pdf", "content": B64}],
)
async def test_resend_fake_refuses_malformed_attachments(fake: Fake, attachments: object) -> None:
    body = {"from": "a@example.com", "to": ["ada@example.org"], "subject": "Hi", "text": "Hello",
            "attachments": attachments}  # fmt: skip
    answer = await fake.http.post(
        f"{fake.origin}/emails", json=body, headers={"authorization": "Bearer re_test_key_123"}
    )
    assert answer.status_code == 422
    assert answer.json()["name"] == "validation_error"


async def test_sendgrid_refusal_of_an_attachment_is_permanent(fake: Fake) -> None:
    """A provider that refuses the files fails the message for good: resending the same files cannot help."""
    sendgrid = fake.adapter(
        "sendgrid", "email", {"api_key": "SG.test-key-123.abc", "from_email": "a@example.com"}
    )
    broken = Attachment("receipt.pdf", "pdf", PDF)  # not type/subtype: SendGrid answers 400
    with pytest.raises(PermanentDeliveryError, match="MIME type"):
        await sendgrid.send(email_with(broken))
