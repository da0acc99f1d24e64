"""Importer for the 2020 public "same-trip lookup" feed (nosugar_trips.csv) -> `exposure` events.

Health commissions published case trips without person ids: a train number, a date, sometimes a
carriage or seat in free text. Each traceable record becomes one `exposure` event per service
number (trains that change number mid-route, and code-share flights, are published as
``T182/T183``: a rider may hold either number). Records of other transport types (coach, bus,
taxi, ship, places) are not traced by this engine: they are counted and reported, never dropped
silently.

The feed is outside input. Every event is checked with the engine's own validator
(``tracer.events.parse_line``) before it is written, so what the importer writes, ``tracer run``
accepts; a record that fails (an impossible date or time, a control character, an over-long
id) is rejected whole, with its id and the reason, and the import goes on. So is a CSV row that
is not a record: a row with more or fewer fields than the header, invalid UTF-8, or a field over
``FIELD_LIMIT`` characters (connectors/importers/csvfeed.py). Only a header without the ``REQUIRED``
columns stops the import. Every row read is counted once: ``records == written + not traced + rejected``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from connectors.importers.csvfeed import BadRow, read_rows
from connectors.importers.report import Report
from tracer import canonical
from tracer.canonical import NotCanonical
from tracer.events import parse_line
from tracer.jsonl import json_record
from tracer.rules import service_date_problem
from tracer.settings import RuleSettings

MAX_SERVICES = 4  # numbers in one record (T182/T183: a train that changes number); the real feed has 3 at most
REQUIRED = ("id", "t_date", "t_type", "t_no")
OPTIONAL = ("t_start", "t_end", "t_no_sub", "t_pos_start", "t_pos_end", "source")  # absent: read as empty
MODES = {"1": "flight", "2": "train", "3": "metro"}
OTHER_TYPES = {"4": "coach", "5": "city bus", "6": "taxi", "7": "ship", "8": "public place"}

# re.ASCII: a fullwidth ３ is not the 3 riders' trips carry, so it must not pass for one.
_CARRIAGE = re.compile(  # 3号车厢, 03车, 第3节车厢, 加1号车厢, A3号车厢, 11-16号车厢, 2车厢，9A
    r"^(?:第)?(加)?([A-Z]?\d{1,2})(?:-(\d{1,2}))?(?:号)?(?:节)?车(?:厢|箱)?(?:[，,、\s]*(\d{1,2}[A-F]))?$", re.ASCII
)
_DINING = re.compile(r"^餐车(?:车厢)?$")
_SEATS = re.compile(r"(\d{1,2}[A-K])", re.ASCII)
_FLIGHT_SEAT = re.compile(r"^(?:座次|座位[:：]?|头等舱|经济舱)?\s*(\d{1,2}[A-K](?:[、,，\s]+\d{1,2}[A-K])*)$", re.ASCII)
_TRAIN_NO = re.compile(r"^([A-Z]{0,2})(\d{1,5})$", re.ASCII)
_FLIGHT_NO = re.compile(r"^([A-Z0-9]{2})(\d{1,4}[A-Z]?)$", re.ASCII)
_TIME = re.compile(r"(\d{4})/(\d{2})/(\d{2}) (\d{2}:\d{2}:\d{2})", re.ASCII)
_NUMBERING = "/"  # nosugar:<id>/<n>, the n-th service of a record: record ids may not hold it
_RELATIVE = ("中间", "最后", "倒数", "尾部", "头部", "前部", "后部")


def read_records(path: str) -> Iterator[dict[str, str] | BadRow]:
    """The rows of the feed as records, a row that is not one as a ``BadRow``
    (connectors/importers/csvfeed.py)."""
    for row in read_rows(path, REQUIRED, OPTIONAL, "a nosugar feed"):
        yield row if isinstance(row, BadRow) else row[1]


def import_nosugar(
    records: Iterable[Mapping[str, str] | BadRow], report: Report, rules: RuleSettings | None = None
) -> Iterator[dict[str, Any]]:
    """Exposure events for the flight, train and metro records; the rest is counted in ``report``.
    ``rules`` (default: the shipped ones) bound an exposure's start around its date, as in ``tracer run``."""
    rules = rules or RuleSettings()
    written: set[str] = set()
    for record in records:
        report.records += 1
        if isinstance(record, BadRow):
            report.reject(f"line {record.line}", record.reason)
            continue
        kind = (record.get("t_type") or "").strip()
        if kind in OTHER_TYPES:
            report.not_traced[OTHER_TYPES[kind]] += 1
            continue
        record_id = record.get("id") or ""
        try:
            events, caveats = _exposures(record, kind, written, rules)
        except ValueError as exc:  # InvalidEvent included: the engine's own reason
            report.reject(f"id {record_id!r:.40}", str(exc))
            continue
        written.add(record_id)
        report.written += 1
        report.clean += not caveats
        for caveat in caveats:
            report.notes[caveat] += 1
        report.events += len(events)
        yield from events


def _exposures(
    record: Mapping[str, str], kind: str, written: set[str], rules: RuleSettings
) -> tuple[list[dict[str, Any]], list[str]]:
    """The record's events, each valid input for ``tracer run``, and its caveats. Raises
    ValueError (or InvalidEvent, the engine's own) saying why the record cannot be used."""
    if kind not in MODES:
        raise ValueError(f"unknown t_type {kind!r:.40}")
    mode = MODES[kind]
    record_id = record.get("id") or ""
    if not record_id.strip():
        raise ValueError("no id")
    if record_id in written:
        raise ValueError("duplicate id: it would replace the earlier record's exposure")
    if _NUMBERING in record_id:  # else id 5/1 and the first service of id 5 would share an exposure id
        raise ValueError(f"id holds {_NUMBERING!r}, which numbers a record's services in its exposure ids")
    caveats: list[str] = []
    day = _date(record.get("t_date", ""))
    start, end = _time(record.get("t_start", "")), _time(record.get("t_end", ""))
    if start is None or end is None or end <= start:
        caveats.append("exposure times unknown: whole service day")
        start = end = None
    services = _services(record.get("t_no", ""), mode)
    carriages, seats = _position(record.get("t_no_sub", ""), mode, caveats)
    source = _source(record.get("source") or None, caveats)
    events = []
    for number, service in enumerate(services):
        suffix = f"{_NUMBERING}{number + 1}" if len(services) > 1 else ""
        events.append(
            {
                "type": "exposure",
                "exposure_id": f"nosugar:{record_id}{suffix}",
                "mode": mode,
                "service": service,
                "date": day,
                "start": start,
                "end": end,
                "carriages": carriages,
                "seats": seats,
                "board_station": record.get("t_pos_start") or None,
                "alight_station": record.get("t_pos_end") or None,
                "source": source,
            }
        )
    for event in events:
        exposure = parse_line(json_record(event), max_ride_us=0)  # exposures have no ride length to bound
        problem = service_date_problem(exposure.date, exposure.start, rules)  # type: ignore[union-attr]
        if problem is not None:
            raise ValueError(problem)
    return events, caveats


def _source(link: str | None, caveats: list[str]) -> str | None:
    """The record's source link, or None when it holds characters no link has (controls, line
    separators): it only says where the record was published, so the exposure is kept without it."""
    if link is None or link.isprintable():
        return link
    caveats.append("source link holds control characters: left out")
    return None


def _date(text: str) -> str:
    """The record's date in its one form (tracer/canonical.py: ``2020/1/5`` too); one already in
    it is left to the engine's validator, whose reason names an impossible day."""
    text = text.strip()
    if canonical.ISO_DATE.fullmatch(text):
        return text
    try:
        return canonical.date(text)
    except NotCanonical:
        raise ValueError("no usable date") from None


def _time(text: str) -> str | None:
    match = _TIME.fullmatch(text.strip())
    return f"{match[1]}-{match[2]}-{match[3]}T{match[4]}+08:00" if match else None


def _services(text: str, mode: str) -> list[str]:
    """``T182/T183`` -> both numbers; ``C6506/6507`` -> C6506, C6507; code shares likewise."""
    if mode == "metro":
        line = text.strip().upper().replace("（", "/").replace("）", "").replace("(", "/").replace(")", "")
        if not line:
            raise ValueError("no metro line")
        return [line]  # a line, not a train run: it meets riders recorded under the same line id
    text = canonical.plain(text).upper().replace("(", "/").replace(")", "")  # （ and ） are ( and ) by then
    services: list[str] = []
    prefix = ""
    for part in filter(None, map(canonical.service_number, text.split("/"))):  # MU 5101, G1234次: one form
        match = (_TRAIN_NO if mode == "train" else _FLIGHT_NO).fullmatch(part)
        if match is None:
            if services:
                continue
            raise ValueError(f"{mode} number not recognised")
        if mode == "train" and not match[1]:
            part = prefix + part  # "C6506/6507": the second number keeps the letter
        prefix = match[1] or prefix
        if part not in services:
            services.append(part)
    if not services:
        raise ValueError(f"no {mode} number")
    if len(services) > MAX_SERVICES:  # each number traces a whole service: no record may fan out to many
        raise ValueError(f"more than {MAX_SERVICES} {mode} numbers")
    return services


def _position(text: str, mode: str, caveats: list[str]) -> tuple[list[str] | None, list[str] | None]:
    """Carriages and seats from the free-text field, or None where it says nothing usable."""
    text = text.strip()
    if not text:
        return None, None
    if mode == "flight":
        match = _FLIGHT_SEAT.fullmatch(text)
        if match:
            return None, _SEATS.findall(match[1])
        caveats.append("seat text not understood: whole flight")
        return None, None
    compact = text.replace(" ", "")
    if _DINING.fullmatch(compact):
        return ["餐车"], None
    match = _CARRIAGE.fullmatch(compact)
    if match:
        extra, first, last, seat = match.groups()
        return _carriages(extra, first, last), [seat] if seat else None
    if any(word in compact for word in _RELATIVE):
        caveats.append("carriage given as a relative position: whole train")
    else:
        caveats.append("carriage text not understood: whole train")
    return None, None


def _carriages(extra: str | None, first: str, last: str | None) -> list[str]:
    """``3`` -> [3], ``加1`` -> [加1], ``11-16`` -> carriages 11 to 16. Any other range (reversed,
    ``A3-5``, ``加1-3``) is refused: read as no carriage it would be the whole train, read as its
    first carriage it would miss riders."""
    if last is None:
        return [("加" if extra else "") + first.lstrip("0")]
    if extra or not first.isdigit() or int(last) < int(first):
        raise ValueError(f"carriage range {first}-{last} is not an ascending range of carriage numbers")
    return [str(n) for n in range(int(first), int(last) + 1)]
