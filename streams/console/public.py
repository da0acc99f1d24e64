"""The public same-trip lookup (同程查询): no login, rate-limited per client address.

Answers whether a case or a published exposure was aboard a service on a day, where, and what
that makes the asker, in plain words. What reaches the page is built here from the lookup's
answer field by field (kind, place, times, stations, level, rule), so no person id, case id or
exposure source can reach it. A question the lookup cannot read is an error that says what was
expected, never a silent "no".
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from streams.console.context import blocking, client_address, console
from streams.console.pages import render
from streams.console.text import labels, language
from tracer.analysis.export import shown as shown_service
from tracer.analysis.lookup import boarded
from tracer.analysis.question import Question, read_question
from tracer.errors import InputError, StateError
from tracer.settings import RuleSettings

_FIELDS = ("date", "mode", "service", "carriage", "seat", "line", "board_time", "alight_time", "station")


async def lookup(request: Request) -> Response:
    asked = {name: request.query_params.get(name, "").strip() for name in _FIELDS}
    if not any(name in request.query_params for name in _FIELDS):  # the form, not yet a question
        return render(request, "lookup.html", asked=asked)
    found, t = console(request), labels(language(request))
    if not found.limits.lookups.take(client_address(request)):
        return render(request, "lookup.html", 429, asked=asked, error=t["lookup_limited"])
    try:  # messy input is read as the command reads it (``mu 5101``, ``2020/1/15``, full-width digits)
        question = read_question(**{name: value or None for name, value in asked.items()})  # type: ignore[arg-type]
        answer = await blocking(found.data.lookup, question)
    except (InputError, StateError) as exc:
        return render(request, "lookup.html", 400, asked=asked, error=t["lookup_error"].format(reason=exc))
    told = question.carriage is not None or question.seat is not None
    shown = [_plain(ride, t, found.settings.rules, told) for ride in answer.rides]
    read = {"date": question.date, "asked": _asked(question, t), "known": answer.known, "rides_kept": answer.rides_kept}
    return render(request, "lookup.html", asked=asked, answers=shown, read=read)


def _asked(question: Question, t: dict[str, str]) -> str:
    """What the lookup read the question as, in the page's language (as ``lookup.asked`` in English)."""
    if question.line is None:
        return f"{t[question.mode]} {shown_service(question.service or '')}"
    return t["lookup_metro_run"].format(line=question.line, boarded=boarded(question))


def _plain(ride: dict[str, Any], t: dict[str, str], rules: RuleSettings, told: bool) -> dict[str, str]:
    """One case ride aboard in plain words: only what it says about the trip and the asker."""
    where = [f"{t['contact_carriage']} {ride['carriage']}" if ride["carriage"] else "",
             f"{t['contact_seat']} {ride['seat']}" if ride["seat"] else ""]
    times = [(ride[name] or "")[11:16] for name in ("board_time", "alight_time")]
    stations = [ride["board_station"] or "", ride["alight_station"] or ""]
    shown = {"kind": t[ride["kind"]], "service": ride["service"], "where": " ".join(filter(None, where)),
             "when": "–".join(filter(None, times)), "stations": " → ".join(filter(None, stations))}
    if ride.get("your_level"):
        rule = t.get(f"rule_{ride['rule']}", ride["rule"]).format(
            flight_row_span=rules.flight_row_span, train_bay_span=rules.train_bay_span)
        shown["you"] = t["lookup_you"].format(level=t[ride["your_level"]], rule=rule)
    elif ride.get("cannot_tell"):
        why = "lookup_need_seat" if ride["mode"] == "flight" else "lookup_need_carriage"
        if ride["mode"] == "train" and told and "compartment" in ride["cannot_tell"]:
            why = "lookup_need_compartment"
        shown["you"] = t["lookup_cannot_tell"].format(why=t[why])
    elif not told:
        shown["you"] = t["lookup_at_least"]
    return shown
