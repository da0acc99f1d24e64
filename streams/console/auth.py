"""Who is asking and what they may do: the session key, logins, CSRF tokens and the access rules.

| who | office X's list, rows, downloads, live events | actions for office X | dashboard | cases | health status |
|---|---|---|---|---|---|
| office account of X | yes | yes | no | no | X's residents |
| supervisor | read-only | no | yes | no | anyone |
| epidemiologist | no | no | no | yes | anyone |

Anyone may use the public lookup, the login page, ``/healthz`` and ``/metrics``. A session is a
signed cookie (Starlette's SessionMiddleware, HttpOnly, SameSite=Strict) holding the account name,
the CSRF token and the language; the account's role is read from the users file at each request,
so a removed account is out at once. Every POST carries the session's CSRF token, as a form field
``csrf`` or a header ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from streams.console.context import console
from streams.console.users import OFFICE, SUPERVISOR, Account
from tracer.errors import ConfigError

KEY_VARIABLE = "TRACER_SESSION_KEY"
SESSION_SECONDS = 12 * 3600  # a working day; then log in again
_MIN_KEY = 32


def session_key(users_path: Path) -> str:
    """``$TRACER_SESSION_KEY``, else the key file beside the users file (made on first run, owner-only)."""
    key = os.environ.get(KEY_VARIABLE)
    if key is not None:
        if len(key.strip()) < _MIN_KEY:
            raise ConfigError(f"${KEY_VARIABLE} must hold at least {_MIN_KEY} characters")
        return key
    path = users_path.with_name(users_path.name + ".session-key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path} can be read by others: chmod 600 it, or remove it for a new one") from None
        key = path.read_text().strip()
        if len(key) < _MIN_KEY:
            raise ConfigError(f"{path} holds no session key: remove it for a new one") from None
        return key
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as target:
        target.write(key + "\n")
    return key


def account(request: Request) -> Account | None:
    name = request.session.get("user")
    return console(request).users.get(name) if isinstance(name, str) else None


def require(request: Request, *roles: str) -> Account:
    """The logged-in account if its role is one of ``roles``: else 401 (no one) or 403."""
    found = account(request)
    if found is None:
        raise HTTPException(401)
    if found.role not in roles:
        raise HTTPException(403)
    return found


def office_reader(request: Request, office: str) -> Account:
    """An account that may read ``office``'s list: that office, or a supervisor (read-only)."""
    found = require(request, OFFICE, SUPERVISOR)
    if found.role == OFFICE and found.subdistrict != office:
        raise HTTPException(403)
    return found


def office_actor(request: Request, office: str) -> Account:
    """The account of ``office`` itself: only an office acts on its residents."""
    found = require(request, OFFICE)
    if found.subdistrict != office:
        raise HTTPException(403)
    return found


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def checked_form(request: Request) -> FormData:
    """The request's form, once its CSRF token is the session's (403 if not)."""
    form = await request.form()
    sent = form.get("csrf") or request.headers.get("x-csrf-token")
    expected = request.session.get("csrf")
    if not (isinstance(sent, str) and isinstance(expected, str) and hmac.compare_digest(sent, expected)):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page")
    return form


def home(found: Account | None) -> str:
    """Where an account starts."""
    if found is None:
        return "/login"
    return {OFFICE: f"/office/{found.subdistrict}", SUPERVISOR: "/dashboard"}.get(found.role, "/cases")


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
