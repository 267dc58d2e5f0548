"""Dashboard sign-in: a signed session cookie, per-session CSRF tokens and a one-shot notice cookie.

The cookie never holds the API key: it carries the tenant id, the key's id, an expiry and a random nonce,
signed with HMAC-SHA256 under a key derived from ``HERALD_SECRET_KEY`` for this purpose alone (so a leak of
one derived key exposes nothing else). Every request re-reads the key's row, so revoking a key ends its
sessions at once. The CSRF token is an HMAC of the session nonce: it changes with each sign-in, needs no
server-side storage, and a page on another site can neither read nor forge it. POSTs must carry it, and a
present ``Origin`` header must name this site. The sign-in form is protected the same way by a short-lived
nonce cookie, so nobody can sign a visitor into someone else's tenant either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from sqlalchemy import select
from starlette.responses import Response

from herald.core.errors import HeraldError
from herald.core.principal import Principal
from herald.core.security import derive_key
from herald.runtime import Runtime
from herald.storage.models import ApiKey, Tenant

SESSION_COOKIE = "herald_session"
LOGIN_COOKIE = "herald_login"
FLASH_COOKIE = "herald_flash"
SESSION_SECONDS = 12 * 3600
LOGIN_SECONDS = 3600
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 64 * 1024


class SignInRequired(HeraldError):
    """No valid session: pages redirect to the sign-in form, live endpoints answer 401."""


class CsrfRefused(HeraldError):
    """A POST without a valid CSRF token, or from another origin: answered with 403."""


class Signer:
    """Signs and checks small JSON payloads; the dashboard's only use of the secret key."""

    def __init__(self, secret_key: str) -> None:
        self._key = derive_key(secret_key, "dashboard-session")

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def sign(self, payload: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=")
        mac = base64.urlsafe_b64encode(self._mac(body)).rstrip(b"=")
        return (body + b"." + mac).decode()

    def unsign(self, token: str | None) -> dict[str, Any] | None:
        """The payload if the signature holds and ``exp`` (when present) is in the future, else None."""
        if not token or token.count(".") != 1 or len(token) > 4096:
            return None
        body, _, mac = token.encode().partition(b".")
        expected = base64.urlsafe_b64encode(self._mac(body)).rstrip(b"=")
        if not hmac.compare_digest(expected, mac):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        expires = payload.get("exp")
        if expires is not None and (not isinstance(expires, int | float) or expires <= time.time()):
            return None
        return payload

    def csrf_token(self, nonce: str, purpose: str) -> str:
        return base64.urlsafe_b64encode(self._mac(f"csrf:{purpose}:{nonce}".encode())).rstrip(b"=").decode()


@lru_cache(maxsize=8)
def signer_for(secret_key: str) -> Signer:
    return Signer(secret_key)


def signer(rt: Runtime) -> Signer:
    return signer_for(rt.settings.secret_key)


@dataclass(frozen=True, slots=True)
class DashboardUser:
    """Who is signed in: the tenant, through one API key (``principal.is_admin`` gates agent changes)."""

    principal: Principal
    tenant_name: str
    key_label: str
    csrf_token: str


class Form:
    """A parsed ``application/x-www-form-urlencoded`` body (browsers' default), without extra dependencies."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self._fields.get(name, []))


async def read_form(request: Request) -> Form:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise CsrfRefused("forms are sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise CsrfRefused("the form is too large")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise CsrfRefused("the form is not UTF-8") from exc
    try:
        return Form(parse_qs(text, keep_blank_values=True, max_num_fields=1000))
    except ValueError as exc:  # more fields than any dashboard form has
        raise CsrfRefused("the form has too many fields") from exc


def check_origin(request: Request) -> None:
    """A browser sends ``Origin`` on every POST; when present it must name this site: the host asked for,
    the host a proxy forwarded, or ``HERALD_PUBLIC_URL``'s (a cross-site form can set none of these)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    rt: Runtime = request.app.state.runtime
    ours = {
        request.headers.get("host", ""),
        request.headers.get("x-forwarded-host", "").split(",")[0].strip(),
    }
    if rt.settings.public_url:
        ours.add(urlsplit(rt.settings.public_url).netloc)
    netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
    if not netloc or netloc not in {host.lower() for host in ours if host}:
        raise CsrfRefused("the form was sent from another site")


def is_https(request: Request) -> bool:
    """Whether cookies must be Secure: the request came over TLS, or Herald's public URL is https (behind a
    proxy that ends TLS, the request itself looks like plain http)."""
    runtime = getattr(request.app.state, "runtime", None)
    public = runtime.settings.public_url if runtime is not None else ""
    return request.url.scheme == "https" or public.startswith("https://")


def start_session(rt: Runtime, request: Request, response: Response, principal: Principal) -> None:
    payload = {
        "t": principal.tenant_id,
        "k": principal.key_id,
        "n": secrets.token_urlsafe(16),
        "exp": int(time.time()) + SESSION_SECONDS,
    }
    response.set_cookie(
        SESSION_COOKIE, signer(rt).sign(payload), max_age=SESSION_SECONDS, path="/",
        httponly=True, samesite="lax", secure=is_https(request),
    )  # fmt: skip


def end_session(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request))


async def current_user(request: Request) -> DashboardUser:
    """The signed-in user, re-validated against the key's row on every request."""
    rt: Runtime = request.app.state.runtime
    payload = signer(rt).unsign(request.cookies.get(SESSION_COOKIE))
    if payload is None:
        raise SignInRequired
    tenant_id, key_id, nonce = payload.get("t"), payload.get("k"), payload.get("n")
    if not (isinstance(tenant_id, str) and isinstance(key_id, str) and isinstance(nonce, str)):
        raise SignInRequired
    async with rt.sessions() as session:
        row = (
            await session.execute(
                select(ApiKey.is_admin, ApiKey.name, ApiKey.prefix, Tenant.name.label("tenant_name"))
                .join(Tenant, Tenant.id == ApiKey.tenant_id)
                .where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
            )
        ).one_or_none()
    if row is None:
        raise SignInRequired
    principal = Principal(tenant_id=tenant_id, key_id=key_id, is_admin=row.is_admin, kind="dashboard")
    label = row.name or f"{row.prefix}…"
    return DashboardUser(principal, row.tenant_name, label, signer(rt).csrf_token(nonce, "session"))


async def checked_form(request: Request, user: DashboardUser) -> Form:
    """The POSTed form, once its origin and CSRF token are checked."""
    check_origin(request)
    form = await read_form(request)
    if not hmac.compare_digest(form.get(CSRF_FIELD).encode(), user.csrf_token.encode()):
        raise CsrfRefused("the form's security token is missing or stale; reload the page and try again")
    return form


def new_login_nonce(rt: Runtime) -> tuple[str, str]:
    """A nonce for the sign-in form's cookie, and the CSRF token the form carries for it."""
    nonce = secrets.token_urlsafe(16)
    return nonce, signer(rt).csrf_token(nonce, "login")


def set_login_cookie(request: Request, response: Response, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=LOGIN_SECONDS, path="/login", httponly=True, samesite="strict",
        secure=is_https(request),
    )  # fmt: skip


async def checked_login_form(rt: Runtime, request: Request) -> Form:
    check_origin(request)
    form = await read_form(request)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    expected = signer(rt).csrf_token(nonce, "login")
    if not nonce or not hmac.compare_digest(form.get(CSRF_FIELD).encode(), expected.encode()):
        raise CsrfRefused("the sign-in form expired; reload the page and try again")
    return form


def set_flash(rt: Runtime, request: Request, response: Response, text: str, kind: str = "info") -> None:
    """A notice for the next page (after a POST-redirect), signed so nobody can plant text in it."""
    token = signer(rt).sign({"x": text[:500], "c": kind, "exp": int(time.time()) + 60})
    response.set_cookie(
        FLASH_COOKIE, token, max_age=60, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def take_flash(rt: Runtime, request: Request) -> dict[str, str] | None:
    payload = signer(rt).unsign(request.cookies.get(FLASH_COOKIE))
    if payload is None or not isinstance(payload.get("x"), str):
        return None
    kind = payload.get("c") if payload.get("c") in ("info", "error") else "info"
    return {"text": payload["x"], "kind": str(kind)}


def clear_flash(request: Request, response: Response) -> None:
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(
            FLASH_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
        )


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to return to; anything else (other hosts, ``//host``, backslashes) goes to ``default``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(ch) < 32 for ch in target):
        return default
    return target
