"""``generate``: a simulated city's event stream (and, optionally, the oracle's expected alerts).

Determinism is the contract: one ``random.Random`` per part, all derived from the seed, sorted
iteration everywhere and no wall-clock time in the output, so the same arguments give the same bytes.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from tracer.errors import OutputError, TracerError
from tracer.oracle import expected_alerts, json_values, write_truth
from tracer.settings import RuleSettings
from tracer.simulate.city import Population
from tracer.simulate.clock import Clock
from tracer.simulate.feeds import Feeds, write_feeds
from tracer.simulate.offices import Offices
from tracer.simulate.outbreak import plan
from tracer.simulate.rides import Rides
from tracer.simulate.schedule import build_schedule
from tracer.simulate.stream import EventStream

RULES = RuleSettings()
# The oracle ignores retention, so the engine must drop nothing: event times reach day days + 1 at most
# (overnight trains, reports) and traced windows start on day -1 at the earliest (onset >= lookback_days,
# corrected by a day), which this bound keeps within retention_days.
MAX_DAYS = RULES.retention_days - RULES.lookback_days - 1
P_MOVE = 0.002  # residents re-registered in another subdistrict during the run
EXTRA_DAYS = 3  # overnight trains arrive, late lines and reports come, after the last day
_PARTS = ("city", "schedule", "outbreak", "rides", "stream", "offices", "feeds")  # a new part goes last: same seeds


def generate(
    persons: int,
    days: int,
    cases: int,
    seed: int,
    out_dir: Path,
    *,
    start_date: str = "2020-01-15",
    truth: bool = True,
    followups: bool = True,
    feeds: Path | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/events.jsonl`` (and ``truth.jsonl`` when ``truth``); return the counts.
    Without ``followups`` no office follows anyone up: the same lines but the ``followup`` ones.
    With ``feeds``, the same city as raw feeds in that folder (tracer/simulate/feeds)."""
    started = time.perf_counter()
    start = _check(persons, days, cases, start_date)
    master = random.Random(seed)
    rngs = {part: random.Random(master.getrandbits(64)) for part in _PARTS}
    clock = Clock(start, days + EXTRA_DAYS)
    population = Population(persons, rngs["city"])
    schedule = build_schedule(persons, rngs["schedule"])
    outbreak = plan(cases, days, RULES.lookback_days, population, schedule, clock, rngs["outbreak"])
    events_path, truth_path = Path(out_dir) / "events.jsonl", Path(out_dir) / "truth.jsonl"
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with open(events_path, "wb", buffering=1 << 20) as out:
            stream = EventStream(out, rngs["stream"])
            offices = Offices(stream, clock, population, outbreak.traced if followups else [], rngs["offices"])
            moves = _registry(stream, population, days, rngs["city"], offices)
            for minute, record in outbreak.reports:
                stream.at(minute, record)
            rides = Rides(stream, clock, population, schedule, outbreak, offices, rngs["rides"])
            services = schedule.services()
            for day in range(days):
                for first, mode, index, run in services:
                    offices.release_before(day * 1440 + first)
                    stream.advance(day * 1440 + first)
                    rides.service(day, mode, index, run)
            offices.release_before(clock.end // 60)
            stream.close()
        stats = {
            "persons": persons,
            "days": days,
            "cases": cases,
            "seed": seed,
            "start_date": start_date,
            "lines": sum(stream.events.values()) + stream.malformed,
            "events": _sorted(stream.events),
            "trips": _sorted(stream.trips),
            "malformed": stream.malformed,
            "disorder": _sorted(stream.disorder),
            "outbreak": _sorted(outbreak.counts),
            "moves": moves,
            "followups": offices.summary(),
        }
        if truth:
            with open(events_path, "rb") as lines:
                alerts = expected_alerts(json_values(lines), RULES)
            write_truth(alerts, truth_path)
            stats["alerts"] = _sorted(Counter(alert["level"] for alert in alerts.values()))
        else:
            truth_path.unlink(missing_ok=True)  # a stale truth would not match these events
        if feeds is not None:
            listing = write_feeds(Feeds(Path(feeds), events_path, clock, population, schedule, rngs["feeds"]))
            stats["feeds"] = {entry["file"]: entry["rows"] for entry in listing["files"]}
    except OSError as exc:
        raise OutputError(f"cannot write to {out_dir}: {exc}") from exc
    stats["seconds"] = round(time.perf_counter() - started, 3)
    return stats


def _check(persons: int, days: int, cases: int, start_date: str) -> date:
    if persons < 1:
        raise TracerError("--persons must be at least 1")
    if not 1 <= days <= MAX_DAYS:
        raise TracerError(
            f"--days must be 1 to {MAX_DAYS} (retention_days - lookback_days - 1), so that the oracle, "
            "which ignores retention, agrees with the engine"
        )
    if not 0 <= cases <= persons:
        raise TracerError("--cases must be 0 to --persons")
    try:
        return date.fromisoformat(start_date)
    except ValueError as exc:
        raise TracerError(f"--start-date must be YYYY-MM-DD, got {start_date!r}") from exc


def _registry(stream: EventStream, population: Population, days: int, rng: random.Random, offices: Offices) -> int:
    """A person event per resident first; a few move during the run (the registry's last one wins).
    The street offices learn where everyone lives. Returns the number of moves."""
    homes = population.homes(rng, population.size)
    for index, home in enumerate(homes):
        stream.person({"type": "person", "person_id": population.resident(index), "subdistrict": home})
    offices.settle(homes)
    moves = round(population.size * P_MOVE)
    for home in population.homes(rng, moves):
        index, minute = rng.randrange(population.size), rng.randrange(days * 1440)
        stream.at(minute, {"type": "person", "person_id": population.resident(index), "subdistrict": home})
        offices.move(index, home)
    return moves


def _sorted(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items()))
