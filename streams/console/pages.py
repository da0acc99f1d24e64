"""A page rendered: its template with what every page needs (the labels in the page's language,
the account, the CSRF token). Jinja2 escapes every value (``.html`` templates autoescape)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from streams.console.auth import account, csrf_token
from streams.console.text import labels, language

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.auto_reload = False  # they ship with the code: no stat of the file at every page (py-spy: 2 %)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    values = {"t": labels(lang), "lang": lang, "user": account(request), "csrf": csrf_token(request), **context}
    return TEMPLATES.TemplateResponse(request, name, values, status_code=status_code)
