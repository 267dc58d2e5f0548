"""Reading one raw RFC 5322 email into what Herald needs: who wrote, about what, what they said, and where it
belongs in a thread.

Built on the standard library's ``email`` package (``policy.default``), with every header and body read
defensively: mail from the open internet carries malformed headers, unknown charsets and broken encodings, and
one bad message must never stop a mailbox. Whatever cannot be decoded properly is decoded loosely (UTF-8, then
Windows-1252, then Latin-1, which takes any byte), never raised.

What an agent reads (:attr:`ParsedEmail.reply_text`) is the new text only: the quoted earlier conversation
("On ... wrote:", ``>`` lines, Outlook's "-----Original Message-----" or "From: ... Sent: ..." block) and the
signature ("-- " delimiter, "Sent from my iPhone" and its kin) are cut, since an agent that reads the whole
history again with every reply answers the wrong thing. Attachments are listed (name, type, size), not kept.

Auto-replies and bounces are recognised (:attr:`ParsedEmail.automated`) so they are never answered: two
auto-responders answering each other would loop for ever.
"""

from __future__ import annotations

import contextlib
import email
import email.header
import email.utils
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Any

__all__ = ["EmailAttachment", "ParsedEmail", "html_to_text", "parse", "reply_text"]

FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")  # latin-1 decodes any byte: the last resort never fails
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_SPACE = re.compile(r"[ \t\r\n\f\v]+")
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})


@dataclass(frozen=True, slots=True)
class EmailAttachment:
    """A file the email carried: listed for the agent, never stored."""

    filename: str
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """One email as Herald reads it.

    ``message_id`` is always set: an email without one gets ``<sha256-of-its-bytes@herald.invalid>``, so the
    same message read twice is still recognised. ``references`` is the thread, oldest first, ending with
    ``in_reply_to`` when that was not already listed. ``automated`` says why no one should answer (an
    auto-reply or a bounce), None for a person's email.
    """

    sender: str
    sender_name: str | None
    reply_to: str | None
    subject: str
    text: str
    reply_text: str
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    date: datetime | None
    attachments: tuple[EmailAttachment, ...]
    automated: str | None

    @property
    def suppressed(self) -> bool:
        return self.automated is not None

    @property
    def reply_address(self) -> str:
        """Where an answer goes: ``Reply-To`` when the sender named one, else the sender."""
        return self.reply_to or self.sender

    @property
    def thread(self) -> tuple[str, ...]:
        """Every earlier message this one names, nearest first: In-Reply-To, then References newest to oldest."""
        ordered = [self.in_reply_to] if self.in_reply_to else []
        ordered += [r for r in reversed(self.references) if r != self.in_reply_to]
        return tuple(ordered)


def parse(raw: bytes) -> ParsedEmail:
    """Read ``raw`` (RFC 5322 bytes, as IMAP's ``RFC822`` fetch gives them). Never raises for the content."""
    message = email.message_from_bytes(raw, policy=policy.default)
    sender_name, sender = _address(_header(message, "From"))
    _, reply_to = _address(_header(message, "Reply-To"))
    in_reply_to = _first_id(_header(message, "In-Reply-To"))
    references = _ids(_header(message, "References"))
    if in_reply_to and in_reply_to not in references:
        references = (*references, in_reply_to)
    body_parts: list[Message] = []
    text = _body(message, body_parts)
    return ParsedEmail(
        sender=sender,
        sender_name=sender_name,
        reply_to=reply_to or None,
        subject=_one_line(_header(message, "Subject")),
        text=text,
        reply_text=reply_text(text),
        message_id=_first_id(_header(message, "Message-ID")) or _synthetic_id(raw),
        in_reply_to=in_reply_to,
        references=references,
        date=_date(_header(message, "Date")),
        attachments=_attachments(message, body_parts),
        automated=_automated(message, sender),
    )


# -- headers ----------------------------------------------------------------------------------------------------


def _header(message: Message, name: str) -> str:
    """The header's decoded text ('' when absent); a header the parser chokes on is decoded by hand."""
    with contextlib.suppress(Exception):  # a malformed header: the registry's parser may raise on odd input
        value = message.get(name)
        return "" if value is None else str(value)
    for key, raw in message.raw_items():
        if key.lower() == name.lower():
            return _decode_words(str(raw))
    return ""


def _decode_words(raw: str) -> str:
    """RFC 2047 encoded words decoded loosely (an unknown charset falls back rather than raising)."""
    try:
        pieces = email.header.decode_header(raw)
    except Exception:
        return raw
    out = []
    for piece, charset in pieces:
        out.append(piece if isinstance(piece, str) else _decode_bytes(piece, charset))
    return "".join(out)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    for candidate in (charset, *FALLBACK_CHARSETS):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")  # pragma: no cover  (latin-1 above never fails)


def _one_line(value: str) -> str:
    """A header as one line: folded or injected line breaks become spaces."""
    return _SPACE.sub(" ", value).strip()


def _address(value: str) -> tuple[str | None, str]:
    """(display name, address lower-cased) of the first mailbox in ``value``; ('', '') when there is none."""
    try:
        pairs = email.utils.getaddresses([_one_line(value)])
    except Exception:
        pairs = []
    for name, address in pairs:
        if "@" in address:
            return (_one_line(name) or None), address.strip().lower()
    return None, ""


def _ids(value: str) -> tuple[str, ...]:
    """Every ``<message-id>`` in ``value``, in order, each once."""
    seen: dict[str, None] = {}
    for found in _MESSAGE_ID.findall(value):
        seen.setdefault(found, None)
    return tuple(seen)


def _first_id(value: str) -> str | None:
    found = _ids(value)
    if found:
        return found[0]
    bare = _one_line(value)
    return f"<{bare}>" if bare and " " not in bare and len(bare) < 490 else None


def _synthetic_id(raw: bytes) -> str:
    return f"<{hashlib.sha256(raw).hexdigest()[:40]}@herald.invalid>"


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _automated(message: Message, sender: str) -> str | None:
    """Why this email is machine-written (an auto-reply, a bounce, a list's mailing), or None."""
    auto_submitted = _header(message, "Auto-Submitted").strip().lower()
    precedence = _header(message, "Precedence").strip().lower()
    flagged = [name for name in ("X-Autoreply", "X-Autorespond") if _header(message, name).strip()]
    report_type = str(
        _safe(lambda: message.get_param("report-type", "", header="content-type")) or "unspecified"
    )
    checks = (
        (
            bool(auto_submitted) and auto_submitted.split(";")[0].strip() != "no",
            f"Auto-Submitted: {auto_submitted}",
        ),
        (precedence in _BULK_PRECEDENCE, f"Precedence: {precedence}"),
        (bool(flagged), f"{', '.join(flagged)} present"),
        (message.get_content_type() == "multipart/report", f"multipart/report ({report_type})"),
        (sender.partition("@")[0] in _DAEMONS, f"sent by {sender}"),
        (
            "Return-Path" in message and _one_line(_header(message, "Return-Path")) == "<>",
            "null Return-Path (<>)",
        ),
    )
    return next((reason for matched, reason in checks if matched), None)


# -- bodies -----------------------------------------------------------------------------------------------------


def _body(message: Message, used: list[Message]) -> str:
    """The text body: text/plain preferred, else the HTML part made readable; '' when there is neither."""
    for preference, convert in ((("plain",), False), (("html",), True)):
        part = _get_body(message, preference)
        if part is not None:
            used.append(part)
            content = _content(part)
            return _tidy(html_to_text(content) if convert else content)
    if not message.is_multipart() and message.get_content_maintype() == "text":
        used.append(message)
        return _tidy(_content(message))
    return ""


def _get_body(message: Message, preference: tuple[str, ...]) -> Message | None:
    if not isinstance(message, EmailMessage):  # pragma: no cover  (policy.default always builds these)
        return None
    try:
        return message.get_body(preferencelist=preference)
    except Exception:  # a broken MIME tree
        return None


def _content(part: Message) -> str:
    """A text part's content, decoded by its charset, or loosely when the charset lies or is unknown."""
    with contextlib.suppress(Exception):  # LookupError for an unknown charset, decoding errors, bad encodings
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return _decode_bytes(payload, part.get_content_charset())
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _tidy(text: str) -> str:
    """Line endings unified, trailing spaces gone, at most one blank line in a row."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _attachments(message: Message, body_parts: list[Message]) -> tuple[EmailAttachment, ...]:
    found: list[EmailAttachment] = []
    for part in message.walk():
        if part.is_multipart() or any(part is used for used in body_parts) or part is message:
            continue
        filename = _safe(lambda p=part: p.get_filename())
        disposition = _safe(lambda p=part: p.get_content_disposition())
        if disposition != "attachment" and not filename:
            continue  # an alternative body (the HTML beside the text), not a file
        payload = _safe(lambda p=part: p.get_payload(decode=True))
        size = len(payload) if isinstance(payload, bytes) else 0
        found.append(
            EmailAttachment(_one_line(str(filename or "")) or "unnamed", part.get_content_type(), size)
        )
    return tuple(found)


def _safe(read: Any) -> Any:
    with contextlib.suppress(Exception):
        return read()
    return None


# -- HTML -------------------------------------------------------------------------------------------------------


class _TextMaker(HTMLParser):
    """HTML to readable text: blocks become lines, lists get dashes, ``<blockquote>`` lines are marked ``>`` so
    quoted replies are cut like plain-text ones, and scripts, styles and the head are dropped."""

    BLOCKS = frozenset({"p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
                        "blockquote", "pre", "hr", "section", "article", "header", "footer", "address"})  # fmt: skip
    PARAGRAPHS = frozenset({"p", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
                            "hr"})  # fmt: skip
    HIDDEN = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.line_quote = 0
        self.quote = 0
        self.hidden = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self._break(paragraph=tag in self.PARAGRAPHS)
        if tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.line.append("- ")
        elif tag in ("td", "th") and self.line:
            self.line.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self._break(paragraph=tag in self.PARAGRAPHS)
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            for i, piece in enumerate(data.split("\n")):
                if i:
                    self._break()
                self._add(piece)
            return
        self._add(_SPACE.sub(" ", data))

    def _add(self, text: str) -> None:
        if not text:
            return
        if not self.line:
            text = text.lstrip()
            if not text:
                return
        self.line.append(text)
        self.line_quote = max(self.line_quote, self.quote)

    def _break(self, *, paragraph: bool = False) -> None:
        """End the current line; a paragraph also leaves one blank line (never two) before what follows."""
        text = "".join(self.line).strip()
        if text:
            self.lines.append(("> " * self.line_quote) + text)
        if paragraph and self.lines and self.lines[-1]:
            self.lines.append("")
        self.line, self.line_quote = [], 0

    def text(self) -> str:
        self._break()
        return "\n".join(self.lines)


def html_to_text(html: str) -> str:
    """Readable text from an HTML body, with the standard library's parser (no dependency for one job)."""
    maker = _TextMaker()
    with contextlib.suppress(Exception):  # the parser is lenient; this is for the odd failure on broken input
        maker.feed(html)
        maker.close()
    return _tidy(maker.text())


# -- what the agent reads ---------------------------------------------------------------------------------------

_ATTRIBUTION = re.compile(
    r"^(on\b.{0,300}\bwrote:|am\b.{0,300}\bschrieb\b.{0,120}:|le\b.{0,300}\ba écrit\s?:|el\b.{0,300}\bescribió:"
    r"|op\b.{0,300}\bschreef\b.{0,120}:|il giorno\b.{0,300}\bha scritto:)\s*$",
    re.IGNORECASE,
)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*(original message|ursprüngliche nachricht|message d'origine)\s*-{2,}\s*$",
                       re.IGNORECASE)  # fmt: skip
_OUTLOOK_FROM = re.compile(r"^\s*\**(from|von|de)\s*:\**\s+\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\s*\**(sent|date|gesendet|envoyé|to|an|subject|betreff)\s*:", re.IGNORECASE)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE = re.compile(r"^--\s?$")
_MOBILE = re.compile(
    r"^\s*(sent from my \S.{0,60}|sent from (outlook|yahoo mail|mail for windows|gmail|proton ?mail)\b.{0,60}"
    r"|get outlook for \S.{0,40}|sent via \S.{0,60}|von meinem \S.{0,60} gesendet|envoyé de mon \S.{0,60})$",
    re.IGNORECASE,
)


def reply_text(text: str) -> str:
    """``text`` without the quoted earlier messages and the signature: what the person wrote this time.

    Falls back to the whole text when cutting would leave nothing (a forward with no comment of its own)."""
    lines = text.split("\n")
    end = len(lines)
    for index, line in enumerate(lines):
        if _starts_quote(lines, index) or _SIGNATURE.match(line) or _MOBILE.match(line):
            end = index
            break
    kept = [line for line in lines[:end] if not line.lstrip().startswith(">")]
    cut = _tidy("\n".join(kept))
    return cut or text.strip()


def _starts_quote(lines: list[str], index: int) -> bool:
    line = lines[index]
    if _ORIGINAL.match(line):
        return True
    # "On Tue, 3 Mar 2026 at 10:02, Dana <dana@example.com> wrote:" is often wrapped over two lines.
    if _ATTRIBUTION.match(line.strip()):
        return True
    if index + 1 < len(lines) and _wrapped_attribution(line, lines[index + 1]):
        return True
    following = lines[index + 1 : index + 5]
    if _OUTLOOK_FROM.match(line) and any(_OUTLOOK_NEXT.match(n) for n in following):
        return True
    return bool(_UNDERSCORES.match(line) and any(_OUTLOOK_FROM.match(n) for n in following))


def _wrapped_attribution(line: str, following: str) -> bool:
    """An attribution wrapped over two lines: this one opens it (with its date) and the next one ends it."""
    if not re.search(r"\d", line) or _ATTRIBUTION.match(following.strip()):
        return False
    return bool(_ATTRIBUTION.match(f"{line.strip()} {following.strip()}"))
