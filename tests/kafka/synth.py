"""A small synthetic city stream for the Kafka tests and benchmarks.

Stands in for ``tracer.simulate.generate`` until that exists (``city_events`` prefers it). The
stream mixes what makes the distributed run differ from the embedded one if the design is wrong:
registry moves after alerts exist, trip corrections and redeliveries, late trips that meet stored
cases, case updates (onset moved, excluded), people without a registry entry, and bad lines.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

_ZONE = timezone(timedelta(hours=8))
_CODES = (
    "310101002", "310101013", "310104003", "310105001", "310106011",
    "310107005", "310109009", "310110012", "310112001", "310115004",
)
BAD_LINES = (
    b"{not json",
    b'{"type": "trip", "person_id": "P1"}',
    b'{"type": "ferry"}',
    b"[1, 2, 3]",
)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def synthetic_events(persons: int = 800, days: int = 3, cases: int = 12, seed: int = 7,
                     start: str = "2020-01-18", bad_lines: bool = True) -> list[bytes]:
    """JSON lines of a city: registry, ``days`` days of rides, then case reports among them."""
    rng = random.Random(seed)
    people = [f"P{i:05d}" for i in range(persons)]
    out: list[tuple[datetime, int, dict[str, Any]]] = []
    order = 0

    def emit(moment: datetime, event: dict[str, Any]) -> None:
        nonlocal order
        order += 1
        out.append((moment, order, event))

    first = datetime.fromisoformat(start).replace(tzinfo=_ZONE)
    for who in people:
        if rng.random() < 0.97:  # a few stay unregistered: their alerts go to "unassigned"
            emit(first - timedelta(days=1), {"type": "person", "person_id": who,
                                             "subdistrict": rng.choice(_CODES)})
    rides: list[dict[str, Any]] = []
    for day_index in range(days):
        day = (date.fromisoformat(start) + timedelta(days=day_index)).isoformat()
        base = first + timedelta(days=day_index)
        services = _services(rng, day, base)
        for who in people:
            for _ in range(rng.choice((0, 1, 1, 2))):
                mode, service, board, alight, extra = rng.choice(services)
                ride = {"type": "trip", "trip_id": f"t{len(rides)}", "person_id": who, "mode": mode,
                        "service": service, "date": day, "board_time": _iso(board),
                        "alight_time": _iso(alight), **extra(rng)}
                rides.append(ride)
                late = timedelta(hours=rng.choice((0, 0, 0, 0, 0, 0, 0, 30)))  # some arrive a day late
                emit(board + late, ride)
    for ride in rng.sample(rides, max(1, len(rides) // 100)):  # corrections and redeliveries
        moment = datetime.fromisoformat(ride["board_time"]) + timedelta(hours=3)
        emit(moment, dict(ride))
        if ride["mode"] != "metro":
            emit(moment, {**ride, "carriage": str(rng.randint(1, 8)), "seat": f"{rng.randint(1, 30)}A"})
    for who in rng.sample(people, max(1, persons // 50)):  # registry moves, after alerts exist
        emit(first + timedelta(days=days, hours=20), {"type": "person", "person_id": who,
                                                      "subdistrict": rng.choice(_CODES)})
    travellers = sorted({r["person_id"] for r in rides})
    for number, who in enumerate(rng.sample(travellers, min(cases, len(travellers)))):
        onset = date.fromisoformat(start) + timedelta(days=rng.randint(0, days))
        reported = first + timedelta(days=days, hours=rng.randint(0, 12))
        isolated = None if rng.random() < 0.5 else _iso(reported - timedelta(hours=rng.randint(1, 40)))
        case = {"type": "case", "case_id": f"C{number}", "person_id": who, "status": "confirmed",
                "onset": onset.isoformat(), "isolated_at": isolated, "reported_at": _iso(reported)}
        emit(reported, case)
        if number % 4 == 1:  # onset moved earlier: re-traced, alerts added
            moved = (onset - timedelta(days=1)).isoformat()
            emit(reported + timedelta(hours=2), {**case, "onset": moved,
                                                 "reported_at": _iso(reported + timedelta(hours=2))})
        elif number % 4 == 2:  # excluded: every alert retracted
            emit(reported + timedelta(hours=3), {**case, "status": "excluded",
                                                 "reported_at": _iso(reported + timedelta(hours=3))})
    out.sort(key=lambda item: (item[0], item[1]))
    lines = [orjson.dumps(event) for _, _, event in out]
    if bad_lines:
        for index, bad in enumerate(BAD_LINES):
            lines.insert((index + 1) * len(lines) // (len(BAD_LINES) + 1), bad)
    return lines


def _services(rng: random.Random, day: str, base: datetime) -> list[tuple[Any, ...]]:
    """(mode, service, board, alight, extra-fields-maker) for one day's runs."""
    found: list[tuple[Any, ...]] = []
    for number in range(6):
        board = base + timedelta(hours=7 + 2 * number)

        def flight(r: random.Random) -> dict[str, Any]:
            if r.random() < 0.05:
                return {"role": "crew", "crew_rows": r.choice(("1-15", "16-30"))}
            return {"seat": f"{r.randint(1, 30)}{r.choice('ABCDEF')}"}

        found.append(("flight", f"MU{5100 + number}", board, board + timedelta(hours=2), flight))
    for number in range(4):
        board = base + timedelta(hours=8 + 3 * number)
        sealed = number != 3

        def train(r: random.Random, sealed: bool = sealed) -> dict[str, Any]:
            extra: dict[str, Any] = {"carriage": str(r.randint(1, 8)), "sealed": sealed}
            if not sealed:
                extra["compartment"] = r.randint(1, 10)
            elif r.random() < 0.2:
                extra.update(berth="soft_sleeper", compartment=str(r.randint(1, 4)))
            return extra

        found.append(("train", f"G{100 + number}", board, board + timedelta(hours=4), train))
    for line in range(1, 4):
        for run in range(10):
            board = base + timedelta(hours=7, minutes=40 * run)

            def metro(r: random.Random) -> dict[str, Any]:
                return {} if r.random() < 0.1 else {"carriage": r.randint(1, 6)}

            found.append(("metro", f"L{line}-{run:03d}", board, board + timedelta(minutes=35), metro))
    return found


def city_events(out_dir: Path, persons: int = 800, days: int = 3, cases: int = 12,
                seed: int = 7) -> Path:
    """Write a city stream to ``out_dir/events.jsonl``: the simulator's when present, else ours."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        from tracer.simulate import generate  # type: ignore[import-not-found]
    except ImportError:
        generate = None
    if generate is not None:
        generate(persons, days, cases, seed, out_dir, truth=True)
    else:
        lines = synthetic_events(persons, days, cases, seed)
        (out_dir / "events.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    return out_dir / "events.jsonl"


OUTCOMES = ("reached", "reached", "quarantined", "unreachable", "released")


def with_followups(lines: list[bytes], truth: list[dict[str, Any]], seed: int) -> list[bytes]:
    """``lines`` with what street offices do about the oracle's alerts (``truth``): follow-ups of every
    outcome for about half of the contacts, hours after their case's report and each placed somewhere
    after it (some before the alert they answer is made), an old-style quarantine, a follow-up for a
    person nobody alerts, and one confirmed case discharged later."""
    rng = random.Random(seed)
    reported: dict[str, tuple[int, datetime]] = {}  # case -> (its first line, its report time)
    confirmed = []  # first lines of confirmed cases
    for index, line in enumerate(lines):
        if line.startswith(b"{") and b'"case"' in line:
            event = orjson.loads(line)
            if event.get("type") == "case" and event["case_id"] not in reported:
                reported[event["case_id"]] = (index, datetime.fromisoformat(event["reported_at"]))
                if event["status"] == "confirmed":
                    confirmed.append(index)
    placed: list[tuple[int, dict[str, Any]]] = []
    contacts = sorted({(a["contact_person_id"], a["case_id"], a["subdistrict"] or "unassigned") for a in truth
                       if a["source_kind"] == "case" and a["case_id"] in reported})
    for person, case_id, office in rng.sample(contacts, len(contacts) // 2):
        index, moment = reported[case_id]
        followup = {"type": "followup", "person_id": person, "outcome": rng.choice(OUTCOMES),
                    "at": _iso(moment + timedelta(minutes=rng.randint(20, 40 * 60))), "by": office}
        placed.append((rng.randint(index + 1, len(lines)), followup))
    index, moment = min(reported.values())
    placed += [
        (len(lines), {"type": "quarantine", "person_id": contacts[0][0], "at": _iso(moment + timedelta(hours=3))}),
        (index + 1, {"type": "followup", "person_id": "NOBODY", "outcome": "unreachable", "at": _iso(moment)}),
    ]
    case = orjson.loads(lines[confirmed[0]])
    discharged = datetime.fromisoformat(case["reported_at"]) + timedelta(days=2)
    placed.append((len(lines), {**case, "status": "discharged", "reported_at": _iso(discharged)}))
    out = list(lines)
    for position, event in sorted(placed, key=lambda item: -item[0]):  # from the end: indexes stay valid
        out.insert(position, orjson.dumps(event))
    return out
