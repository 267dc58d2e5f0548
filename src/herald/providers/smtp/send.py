"""SMTP: one plain-text email per message through any mail server (aiosmtplib); with attachments it is a MIME
multipart/mixed email (the text first, then each file as an attachment part).

STARTTLS on 587 (the default) or implicit TLS on 465 (``use_tls``); AUTH when a username is given. SMTP has no
provider message id, so the adapter sets the ``Message-ID`` header (Herald's, see :mod:`herald.providers.mailthread`)
and returns it. A conversation reply goes out threaded: ``Re: <subject>``, ``In-Reply-To`` and ``References``. Reply codes decide the
class: 4xx (greylisting, mailbox busy, too many connections) and connection failures or timeouts are
retryable, 5xx (550 unknown recipient, 535 authentication failed, 554 refused) are permanent.

The channel's ``base_url`` is not used: host and port come from the credentials. The outbound guard checks the
host before connecting (a refused host is permanent; one that does not resolve, retryable).
"""

from __future__ import annotations

import email.utils
import ssl
from email.message import EmailMessage
from typing import ClassVar

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, model_validator

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.core.netguard import BlockedDestination
from herald.providers import mailthread
from herald.providers.base import Channel, OutboundMessage

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DEFAULT_SUBJECT = "Message"


class SmtpCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255, pattern=r"^[^\s/]+$")
    port: int = Field(default=587, ge=1, le=65_535)
    username: str | None = Field(default=None, description="AUTH user; omit for servers without AUTH")
    password: str | None = Field(default=None, repr=False)
    from_email: str = Field(pattern=EMAIL_PATTERN)
    from_name: str | None = None
    starttls: bool = Field(default=True, description="upgrade with STARTTLS (required when true)")
    use_tls: bool = Field(default=False, description="implicit TLS from the first byte (port 465)")
    ca_cert: str | None = Field(
        default=None,
        description="PEM of an extra CA (or the server's own self-signed certificate) to trust besides the system's",
    )
    validate_certs: bool = Field(default=True, description="false skips certificate checks (not advised)")

    @model_validator(mode="after")
    def _consistent(self) -> SmtpCredentials:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.use_tls and self.starttls:
            # Implicit TLS already encrypts the session; STARTTLS would be refused by the server.
            self.starttls = False
        return self


class SmtpChannel(Channel):
    provider = "smtp"
    platforms: ClassVar[frozenset[str]] = frozenset({"email"})
    credentials_model = SmtpCredentials
    split_long = False
    takes_attachments = True
    timeout: ClassVar[float] = 30.0  # seconds for connecting and for each SMTP reply

    async def send(self, message: OutboundMessage) -> str:
        creds = SmtpCredentials.model_validate(self.config.credentials)
        try:
            email_message = build_email(creds, message)
        except ValueError as exc:  # e.g. a line break in the recipient or subject (header injection)
            raise PermanentDeliveryError(f"smtp: cannot build the email: {exc}") from exc
        try:
            if self.outbound is not None:  # aiosmtplib connects itself, past the HTTP client's guard
                await self.outbound.check_host(creds.host, creds.port)
            await aiosmtplib.send(
                email_message,
                hostname=creds.host,
                port=creds.port,
                username=creds.username,
                password=creds.password,
                use_tls=creds.use_tls,
                start_tls=creds.starttls,
                validate_certs=creds.validate_certs,
                tls_context=_tls_context(creds),
                timeout=self.timeout,
            )
        except BlockedDestination as exc:
            raise PermanentDeliveryError(f"smtp: {exc}") from exc
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            raise classify(exc) from exc
        return str(email_message["Message-ID"])


def _tls_context(creds: SmtpCredentials) -> ssl.SSLContext | None:
    """A context trusting ``ca_cert`` besides the system's CAs; None leaves it to aiosmtplib's defaults."""
    if not creds.ca_cert or not (creds.starttls or creds.use_tls):
        return None
    try:
        context = ssl.create_default_context(cadata=creds.ca_cert)
    except (ssl.SSLError, ValueError) as exc:
        raise PermanentDeliveryError("smtp: ca_cert is not a valid PEM certificate") from exc
    context.load_default_certs()  # the extra CA adds to the system's, it does not replace them
    if not creds.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def classify(exc: Exception) -> RetryableDeliveryError | PermanentDeliveryError:
    """The delivery error for what aiosmtplib raised (order matters: several classes share bases)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        code = refusals[0].code if refusals else 550
        return _by_code(code, "; ".join(f"{r.code} {r.message}" for r in refusals))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, f"{exc.code} {exc.message}")
    if isinstance(exc, TimeoutError):  # aiosmtplib's connect and read timeouts included
        return RetryableDeliveryError("smtp timed out")
    certificate = _certificate_problem(exc)
    if certificate:
        return PermanentDeliveryError(f"smtp: server certificate not trusted: {certificate}")
    if isinstance(exc, OSError):  # refused, reset, disconnected, TLS failures (aiosmtplib's connect errors)
        return RetryableDeliveryError(f"smtp unreachable: {type(exc).__name__}: {exc}")
    # SMTPNotSupported and the plain SMTPException: the server lacks STARTTLS, AUTH or SMTPUTF8 that this email
    # or the settings need; ValueError: settings aiosmtplib refuses up front. Setup problems, not passing ones.
    detail = exc.message if isinstance(exc, aiosmtplib.SMTPException) else str(exc)
    return PermanentDeliveryError(f"smtp: {detail}")


def build_email(creds: SmtpCredentials, message: OutboundMessage) -> EmailMessage:
    """The plain-text email for ``message``, with Herald's ``Message-ID`` on the sender's domain and, for a
    reply in a conversation, the thread's headers; its attachments make it multipart/mixed."""
    email_message = EmailMessage()
    email_message["From"] = email.utils.formataddr((creds.from_name or "", creds.from_email))
    email_message["To"] = message.recipient_id
    email_message["Subject"] = (
        mailthread.reply_subject(message.subject, message.reply_context) or DEFAULT_SUBJECT
    )
    email_message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    email_message["Message-ID"] = mailthread.message_id(message.id, creds.from_email)
    for name, value in mailthread.thread_headers(message.reply_context).items():
        email_message[name] = value
    email_message.set_content(message.content)
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        email_message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return email_message


def _by_code(code: int, detail: str) -> RetryableDeliveryError | PermanentDeliveryError:
    """SMTP reply classes: 5xx is permanent, anything else (4xx, odd codes) is worth another try."""
    text = f"smtp refused: {detail}"
    if 500 <= code < 600:
        return PermanentDeliveryError(text)
    return RetryableDeliveryError(text)


def _certificate_problem(exc: BaseException) -> str | None:
    """The verification failure behind ``exc`` (aiosmtplib may wrap it), if that is what it is."""
    seen: BaseException | None = exc
    for _ in range(10):  # a bounded walk down the cause chain
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen)
        seen = seen.__cause__ or seen.__context__
    return None
