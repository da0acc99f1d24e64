"""The staff's health status lookup: one person's colour, reasons and until. An office account
looks up its own residents only (their home is the office's, or they are on its list)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from streams.console.auth import require
from streams.console.context import blocking, console
from streams.console.pages import render
from streams.console.users import OFFICE, ROLES
from tracer.events import MAX_ID


async def status(request: Request) -> Response:
    found = require(request, *ROLES)
    person = request.query_params.get("person", "").strip()
    if not person:
        return render(request, "status.html", person="", result=None)
    if len(person) > MAX_ID:
        raise HTTPException(400, f"a person id has at most {MAX_ID} characters")
    data = console(request).data
    if found.role == OFFICE and found.subdistrict not in await blocking(data.offices_of, person):
        return render(request, "status.html", 403, person=person, result=None, error="not_your_resident")
    return render(request, "status.html", person=person, result=await blocking(data.status, person))
