"""The epidemiologist's pages: cases with their contacts counted by level, clusters, one case's
folded contact list (direct and secondary), and its chain picture."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from streams.console.auth import require
from streams.console.context import blocking, console
from streams.console.pages import render
from streams.console.users import EPIDEMIOLOGIST
from tracer.rules import Level

CONTACT_COLUMNS = ("contact_person_id", "level", "subdistrict", "mode", "service", "date", "via_person_id",
                   "contact_carriage", "contact_seat", "rule", "exposure_start", "exposure_end")
_LEVELS = (Level.CLOSE, Level.SECONDARY, Level.GENERAL)
_CLUSTERS_SHOWN = 50
_PICTURE_POLICY = "default-src 'none'; style-src 'unsafe-inline'"  # an SVG opened alone runs nothing


async def cases(request: Request) -> Response:
    require(request, EPIDEMIOLOGIST)
    data = console(request).data
    found, linked = await blocking(data.cases), await blocking(data.clusters)
    return render(request, "cases.html", cases=found, levels=_LEVELS, clusters=linked[:_CLUSTERS_SHOWN])


async def case(request: Request) -> Response:
    require(request, EPIDEMIOLOGIST)
    case_id = request.path_params["case_id"]
    contacts = await blocking(console(request).data.case_contacts, case_id)
    if contacts is None:
        raise HTTPException(404)
    contacts.sort(key=lambda alert: (_LEVELS.index(alert["level"]), alert["contact_person_id"], alert["date"],
                                     alert["alert_id"]))
    return render(request, "case.html", case_id=case_id, contacts=contacts, columns=CONTACT_COLUMNS)


async def picture(request: Request) -> Response:
    require(request, EPIDEMIOLOGIST)
    drawn = await blocking(console(request).data.case_picture, request.path_params["case_id"])
    if drawn is None:
        raise HTTPException(404)
    return Response(drawn, media_type="image/svg+xml", headers={"Content-Security-Policy": _PICTURE_POLICY})
