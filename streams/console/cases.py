"""The epidemiologist's pages: cases with their contacts counted by level, clusters, one case's
folded contact list (direct and secondary), and its chain picture, whose count nodes link to that
list narrowed to their trip and level (the drill-down)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from streams.console.auth import require
from streams.console.context import blocking, console
from streams.console.pages import render
from streams.console.users import EPIDEMIOLOGIST
from tracer.analysis.picture import counted
from tracer.rules import Level

CONTACT_COLUMNS = ("contact_person_id", "level", "subdistrict", "mode", "service", "date", "via_person_id",
                   "contact_carriage", "contact_seat", "rule", "exposure_start", "exposure_end")
_LEVELS = (Level.CLOSE, Level.SECONDARY, Level.GENERAL)
_CLUSTERS_SHOWN = 50
_TRIP = ("date", "mode", "service", "level")  # a count node's trip and level: the list's narrowing
_SVG = "http://www.w3.org/2000/svg"
ET.register_namespace("", _SVG)


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
    trip = {name: request.query_params.get(name, "") for name in _TRIP}
    if any(trip.values()):
        if not all(trip.values()):
            raise HTTPException(400, f"a trip is all of {', '.join(_TRIP)}")
        contacts = counted(contacts, (trip["date"], trip["mode"], trip["service"]), trip["level"])
    contacts.sort(key=lambda alert: (_LEVELS.index(alert["level"]), alert["contact_person_id"], alert["date"],
                                     alert["alert_id"]))
    persons = len({alert["contact_person_id"] for alert in contacts})
    return render(request, "case.html", case_id=case_id, contacts=contacts, columns=CONTACT_COLUMNS, persons=persons,
                  trip=trip if any(trip.values()) else None)


async def picture(request: Request) -> Response:
    """The chain picture on a page of the console (its header, its language), drawn inline so that
    its count nodes are links."""
    require(request, EPIDEMIOLOGIST)
    case_id = request.path_params["case_id"]
    drawn = await blocking(console(request).data.case_picture, case_id)
    if drawn is None:
        raise HTTPException(404)
    return render(request, "picture.html", case_id=case_id, svg=_drill_down(drawn, case_id))


def _drill_down(svg: str, case_id: str) -> str:
    """The picture with each count node inside a link to the case's list narrowed to its trip and
    level (the node's ``data-*``): a click drills down, with no script. Parsed and written again by
    ElementTree, so the page gets well-formed SVG with every value escaped."""
    root = ET.fromstring(svg)
    for index, node in enumerate(list(root)):
        if node.get("class") == "aggregate":
            query = urlencode({name: node.get(f"data-{name}", "") for name in _TRIP})
            link = ET.Element(f"{{{_SVG}}}a", href=f"/cases/{quote(case_id)}?{query}")
            link.append(node)
            root[index] = link
    return ET.tostring(root, encoding="unicode")
