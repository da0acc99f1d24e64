"""The login and logout pages, and the login rate limit (per account and per client address)."""

from __future__ import annotations

import secrets
from functools import cache

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from streams.console.auth import checked_form, home
from streams.console.context import blocking, client_address, console
from streams.console.pages import render
from streams.console.users import NAME, hash_password, verify_password


async def login(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "login.html")
    form = await checked_form(request)
    name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:1024]
    limits, address = console(request).limits, client_address(request)
    if limits.login_names.exceeded(name) or limits.login_addresses.exceeded(address):
        return render(request, "login.html", 429, error="login_limited")
    found = console(request).users.get(name) if NAME.fullmatch(name) else None
    # An unknown account costs the same hash as a known one: the answer's time tells nothing.
    matched = await blocking(verify_password, password, found.password if found else _decoy())
    if found is None or not matched:
        limits.login_names.count(name)
        limits.login_addresses.count(address)
        return render(request, "login.html", 401, error="login_failed")
    limits.login_names.forget(name)
    lang = request.session.get("lang")
    request.session.clear()  # a new session: nothing chosen before the login carries over but the language
    request.session.update({"user": found.name, "csrf": secrets.token_urlsafe(32), "lang": lang})
    target = str(form.get("next", ""))
    local = target.startswith("/") and not target.startswith(("//", "/\\"))
    return RedirectResponse(target if local else home(found), status_code=303)


async def logout(request: Request) -> Response:
    await checked_form(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@cache
def _decoy() -> str:
    return hash_password(secrets.token_urlsafe(16))
