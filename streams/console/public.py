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
from tracer.errors import InputError, StateError
from tracer.events import MODES
from tracer.settings import RuleSettings

_FIELDS = ("date", "mode", "service", "carriage", "seat")


async def lookup(request: Request) -> Response:
    asked = {name: request.query_params.get(name, "").strip() for name in _FIELDS}
    if not any(name in request.query_params for name in _FIELDS):  # the form, not yet a question
        return render(request, "lookup.html", asked=asked)
    found, t = console(request), labels(language(request))
    if not found.limits.lookups.take(client_address(request)):
        return render(request, "lookup.html", 429, asked=asked, error=t["lookup_limited"])
    missing = _missing(asked)
    if missing is not None:
        return render(request, "lookup.html", 400, asked=asked, error=t["lookup_error"].format(reason=t[missing]))
    try:
        answers = await blocking(found.data.lookup, asked["date"], asked["service"], asked["mode"],
                                 asked["carriage"] or None, asked["seat"] or None)
    except (InputError, StateError) as exc:
        return render(request, "lookup.html", 400, asked=asked, error=t["lookup_error"].format(reason=exc))
    told = bool(asked["carriage"] or asked["seat"])
    shown = [_plain(answer, t, found.settings.rules, told) for answer in answers]
    return render(request, "lookup.html", asked=asked, answers=shown)


def _missing(asked: dict[str, str]) -> str | None:
    """The label of what a question lacks before the lookup can read it."""
    if not asked["date"]:
        return "expected_date"
    if asked["mode"] not in MODES:
        return "expected_mode"
    return "expected_service" if not asked["service"] else None


def _plain(answer: dict[str, Any], t: dict[str, str], rules: RuleSettings, told: bool) -> dict[str, str]:
    """One answer in plain words: only what it says about the trip and the asker."""
    where = [f"{t['contact_carriage']} {answer['carriage']}" if answer["carriage"] else "",
             f"{t['contact_seat']} {answer['seat']}" if answer["seat"] else ""]
    times = [(answer[name] or "")[11:16] for name in ("board_time", "alight_time")]
    stations = [answer["board_station"] or "", answer["alight_station"] or ""]
    shown = {"kind": t[answer["kind"]], "where": " ".join(filter(None, where)),
             "when": "–".join(filter(None, times)), "stations": " → ".join(filter(None, stations))}
    if answer.get("your_level"):
        rule = t.get(f"rule_{answer['rule']}", answer["rule"]).format(
            flight_row_span=rules.flight_row_span, train_bay_span=rules.train_bay_span)
        shown["you"] = t["lookup_you"].format(level=t[answer["your_level"]], rule=rule)
    elif answer.get("cannot_tell"):
        why = t["lookup_need_seat"] if answer["mode"] == "flight" else t["lookup_need_carriage"]
        shown["you"] = t["lookup_cannot_tell"].format(why=why)
    elif not told:
        shown["you"] = t["lookup_at_least"]
    return shown
