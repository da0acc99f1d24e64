"""The same-trip lookup's answer as the public may see it (同程排查, the console's open page).

Built field by field from the staff answer (``tracer.analysis.lookup``), never copied from it: no
case id, exposure id or person id, only what a published notice says (which service, where aboard,
when, who published an exposure) and what it makes the asker, with the rule in plain words. The
question is given back as it was read, so the asker sees how ``mu 5101`` was understood.
"""

from __future__ import annotations

from typing import Any

from tracer.analysis.lookup import Answer, asked, run_departure, summary
from tracer.analysis.question import clock
from tracer.settings import RuleSettings

_KINDS = {"case": "case", "exposure": "published exposure"}


def public_answer(answer: Answer, rules: RuleSettings) -> dict[str, Any]:
    question = answer.question
    aboard = [_public_ride(ride, question.line is not None, rules) for ride in answer.rides]
    aboard.sort(key=lambda ride: [str(ride[name] or "") for name in ("service", "board_time", "carriage", "seat")])
    read = {
        "date": question.date,
        "mode": question.mode,
        "asked": asked(question),
        "carriage": question.carriage,
        "seat": question.seat,
    }
    if question.alighted is not None:
        read["alight_time"] = clock(question.alighted)
    if question.station is not None:
        read["station"] = question.station
    return {"question": read, "answer": summary(answer), "known_service": answer.known,
            "rides_kept": answer.rides_kept, "aboard": aboard}


def _public_ride(ride: dict[str, Any], by_line: bool, rules: RuleSettings) -> dict[str, Any]:
    shown = {
        "kind": _KINDS[ride["kind"]],
        "service": ride["service"],
        "carriage": ride["carriage"],
        "seat": ride["seat"],
        "board_station": ride["board_station"],
        "alight_station": ride["alight_station"],
        "board_time": ride["board_time"],
        "alight_time": ride["alight_time"],
        "published_by": ride["source"],
        "rides_kept": ride["rides_kept"],
    }
    if by_line:
        departure = run_departure(ride["service"], ride["date"])
        shown["run_departure"] = None if departure is None else clock(departure)
    if "your_level" in ride:
        shown["your_level"] = ride["your_level"]
        why = ride["cannot_tell"] or plain_rule(ride["rule"], rules)
        shown["why"] = f"if you rode this run: {why}" if by_line else why
    return shown


def plain_rule(rule: str, rules: RuleSettings) -> str:
    """A rule of docs/rules.md in words a rider understands, with the numbers of these settings."""
    rows, bays = rules.flight_row_span, rules.train_bay_span
    return {
        "flight.rows_within_span": f"on the same flight within {rows} rows of the case",
        "flight.crew_served_case_row": "crew serving the case's row",
        "flight.case_crew_served_row": "the case was crew serving your row",
        "flight.crew_together": "crew on the same flight as the case, who was crew too",
        "flight.same_flight": f"on the same flight, more than {rows} rows from the case",
        "train.same_compartment": "in the case's soft-sleeper compartment",
        "train.same_carriage": "in the case's carriage of a sealed train",
        "train.bay_within_span": f"in the case's carriage within {bays} bay(s) of the case",
        "train.crew_of_carriage": "crew of the case's carriage",
        "train.same_train": "on the same train, not in the case's carriage",
        "metro.same_carriage": "in the case's carriage of the same run",
        "metro.same_train": "on the same run, not in the case's carriage",
    }[rule]
