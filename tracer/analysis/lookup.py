"""Same-trip lookup (同程排查): did a known case or published exposure ride this service that day?

Answers from the source rides stored for that service day: one group scan per mode, never a
scan of the whole state. Given the caller's carriage or seat, it also says which level the rules
would give them.
"""

from __future__ import annotations

from typing import Any

from graph.store import Store
from tracer.analysis.queries import rides_on, source
from tracer.events import Trip, format_time
from tracer.rules import classify
from tracer.settings import RuleSettings
from tracer.sources import FAR


def lookup(
    store: Store,
    rules: RuleSettings,
    date: str,
    service: str,
    carriage: str | None = None,
    seat: str | None = None,
    mode: str | None = None,
) -> list[dict[str, Any]]:
    answers = []
    for key, ride in rides_on(store, date, service, mode):
        src = source(store, key, rules)
        if src is None or src.via_person_id is not None:
            continue  # secondary-tracing rides are about contacts, not cases
        answer: dict[str, Any] = {
            "kind": src.kind,
            "case_id": src.case_id,
            "mode": ride.mode,
            "service": ride.service,
            "date": ride.date,
            "carriage": ride.carriage,
            "seat": ride.seat,
            "board_station": ride.board_station,
            "alight_station": ride.alight_station,
            "board_time": format_time(ride.board, rules.zone) if abs(ride.board) < FAR else None,
            "alight_time": format_time(ride.alight, rules.zone) if abs(ride.alight) < FAR else None,
            "source": src.exposure.source if src.exposure is not None else None,
        }
        if carriage is not None or seat is not None:
            caller = Trip("caller", "", ride.mode, ride.service, ride.date, ride.board, ride.alight, carriage, seat)
            answer["your_level"], answer["rule"] = classify(ride, caller, rules)
        answers.append(answer)
    return answers
