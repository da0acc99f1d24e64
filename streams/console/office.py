"""A street office's page: its call list (live), the KPIs, downloads, and the actions that become
follow-ups.

Every route names the office in its path and checks the account against that office before it
reads anything (``auth.office_reader``, ``auth.office_actor``); nothing a request body says names
another office: an action's ``by`` is the account's own office, and its person must be on that
office's list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from connectors.tables import write_rows
from streams.console.auth import checked_form, office_actor, office_reader
from streams.console.context import blocking, console
from streams.console.pages import render
from streams.console.users import OFFICE
from tracer.alerts import UNASSIGNED
from tracer.errors import InvalidEvent
from tracer.events import OUTCOMES
from tracer.places import subdistricts
from tracer.views import CALL_COLUMNS

_MEDIA = {"csv": "text/csv; charset=utf-8",
          "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_MAX_NOTE = 500


def _known(office: str) -> str:
    """``office`` if it names a street office (404 if not): checked after the access check, so an
    office account learns nothing of other codes."""
    if office != UNASSIGNED and office not in subdistricts():
        raise HTTPException(404)
    return office


async def page(request: Request) -> Response:
    office = request.path_params["code"]
    found = office_reader(request, office)
    place = subdistricts().get(_known(office))
    return render(request, "office.html", office=office, office_name=place.name if place else "",
                  can_act=found.role == OFFICE)


async def rows(request: Request) -> JSONResponse:
    office = request.path_params["code"]
    office_reader(request, office)
    data = console(request).data
    general = request.query_params.get("general") == "1"
    listed = await blocking(data.call_list, _known(office), general)
    kpis = await blocking(data.office_kpis, office)
    return JSONResponse({"now": await blocking(data.now), "rows": listed, "kpis": kpis},
                        headers={"Cache-Control": "no-store"})


async def download(request: Request) -> Response:
    office, form = request.path_params["code"], request.path_params["form"]
    office_reader(request, office)
    if form not in _MEDIA:
        raise HTTPException(404)
    data = console(request).data
    listed = await blocking(data.call_list, _known(office), request.query_params.get("general") == "1")
    name = f"calllist-{office}-{(await blocking(data.now) or 'now')[:10]}.{form}"
    return Response(write_rows(listed, CALL_COLUMNS, form), media_type=_MEDIA[form],
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


async def events(request: Request) -> StreamingResponse:
    office = request.path_params["code"]
    office_reader(request, office)
    return console(request).hub.stream(_known(office))


async def act(request: Request) -> JSONResponse:
    """One action on one resident: a followup event appended to the stream (once)."""
    office = request.path_params["code"]
    office_actor(request, office)
    form = await checked_form(request)
    person, outcome = str(form.get("person_id", "")), str(form.get("outcome", ""))
    note = str(form.get("note", "")).strip()
    if outcome not in OUTCOMES:
        return _refused(f"outcome must be one of {', '.join(OUTCOMES)}")
    if len(note) > _MAX_NOTE:
        return _refused(f"a note has at most {_MAX_NOTE} characters")
    found = console(request)
    at = _time(str(form.get("at", "")), found.settings.rules.zone)
    if at is None:
        return _refused("time must be like 2020-01-23T10:05 (local time) or carry its UTC offset")
    listed = await blocking(found.data.call_list, _known(office), True)
    if person not in {row["person_id"] for row in listed}:
        raise HTTPException(403, "not on this office's list")
    record: dict[str, Any] = {"type": "followup", "person_id": person, "outcome": outcome, "at": at, "by": office}
    if note:
        record["note"] = note
    try:
        written = await blocking(found.data.append_followup, record)
    except InvalidEvent as exc:
        return _refused(exc.reason)
    if written:
        found.metrics.followups_appended += 1
    else:
        found.metrics.followups_repeated += 1
    return JSONResponse({"written": written})


def _time(text: str, zone: Any) -> str | None:
    """ISO time with its offset: a time without one (a browser's datetime-local) is in ``zone``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat(timespec="seconds")


def _refused(reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=400)
