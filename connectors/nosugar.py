"""Importer for the 2020 public "same-trip lookup" feed (nosugar_trips.csv) -> `exposure` events.

Health commissions published case trips without person ids: a train number, a date, sometimes a
carriage or seat in free text. Each traceable record becomes one `exposure` event per service
number (trains that change number mid-route, and code-share flights, are published as
``T182/T183``: a rider may hold either number). Records of other transport types (coach, bus,
taxi, ship, places) are not traced by this engine: they are counted and reported, never dropped
silently.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

MODES = {"1": "flight", "2": "train", "3": "metro"}
OTHER_TYPES = {"4": "coach", "5": "city bus", "6": "taxi", "7": "ship", "8": "public place"}

# [0-9], not \d: a fullwidth "３号车厢" would make carriage "３", which equals no rider's "3".
_CARRIAGE = re.compile(  # 3号车厢, 03车, 第3节车厢, 加1号车厢, A3号车厢, 11-16号车厢, 2车厢，9A
    r"^(?:第)?(加)?([A-Z]?[0-9]{1,2})(?:-([0-9]{1,2}))?(?:号)?(?:节)?车(?:厢|箱)?(?:[，,、\s]*([0-9]{1,2}[A-F]))?$"
)
_DINING = re.compile(r"^餐车(?:车厢)?$")
_SEATS = re.compile(r"([0-9]{1,2}[A-K])")
_FLIGHT_SEAT = re.compile(r"^(?:座次|座位[:：]?|头等舱|经济舱)?\s*([0-9]{1,2}[A-K](?:[、,，\s]+[0-9]{1,2}[A-K])*)$")
_TRAIN_NO = re.compile(r"^([A-Z]{0,2})([0-9]{1,5})$")
_FLIGHT_NO = re.compile(r"^([A-Z0-9]{2})([0-9]{1,4}[A-Z]?)$")
_RELATIVE = ("中间", "最后", "倒数", "尾部", "头部", "前部", "后部")


@dataclass
class ImportReport:
    """What happened to every record: written, or why not."""

    records: int = 0
    exposures: int = 0
    clean: int = 0  # records whose every field parsed as published
    not_traced: Counter[str] = field(default_factory=Counter)  # transport types this engine does not trace
    rejected: Counter[str] = field(default_factory=Counter)  # traceable types that could not be used
    notes: Counter[str] = field(default_factory=Counter)  # used, with a caveat


def read_records(path: str) -> Iterator[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as stream:
        yield from csv.DictReader(stream)


def import_nosugar(records: Iterable[dict[str, str]], report: ImportReport) -> Iterator[dict[str, Any]]:
    """Exposure events for the flight, train and metro records; the rest is counted in ``report``."""
    for record in records:
        report.records += 1
        kind = (record.get("t_type") or "").strip()
        if kind in OTHER_TYPES:
            report.not_traced[OTHER_TYPES[kind]] += 1
            continue
        if kind not in MODES:
            report.rejected[f"unknown t_type {kind!r}"] += 1
            continue
        try:
            events, caveats = _exposures(record, MODES[kind])
        except ValueError as exc:
            report.rejected[str(exc)] += 1
            continue
        report.clean += not caveats
        for caveat in caveats:
            report.notes[caveat] += 1
        report.exposures += len(events)
        yield from events


def _exposures(record: dict[str, str], mode: str) -> tuple[list[dict[str, Any]], list[str]]:
    caveats: list[str] = []
    day = _date(record.get("t_date", ""))
    start, end = _time(record.get("t_start", "")), _time(record.get("t_end", ""))
    if start is None or end is None or end <= start:
        caveats.append("exposure times unknown: whole service day")
        start = end = None
    services = _services(record.get("t_no", ""), mode)
    carriages, seats = _position(record.get("t_no_sub", ""), mode, caveats)
    events = []
    for number, service in enumerate(services):
        suffix = f"/{number + 1}" if len(services) > 1 else ""
        events.append(
            {
                "type": "exposure",
                "exposure_id": f"nosugar:{record['id']}{suffix}",
                "mode": mode,
                "service": service,
                "date": day,
                "start": start,
                "end": end,
                "carriages": carriages,
                "seats": seats,
                "board_station": record.get("t_pos_start") or None,
                "alight_station": record.get("t_pos_end") or None,
                "source": record.get("source") or None,
            }
        )
    return events, caveats


def _date(text: str) -> str:
    text = text.strip().replace("/", "-")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError("no usable date")
    return text


def _time(text: str) -> str | None:
    match = re.fullmatch(r"(\d{4})/(\d{2})/(\d{2}) (\d{2}:\d{2}:\d{2})", text.strip())
    return f"{match[1]}-{match[2]}-{match[3]}T{match[4]}+08:00" if match else None


def _services(text: str, mode: str) -> list[str]:
    """``T182/T183`` -> both numbers; ``C6506/6507`` -> C6506, C6507; code shares likewise."""
    text = text.strip().upper().replace("（", "/").replace("）", "").replace("(", "/").replace(")", "")
    if mode == "metro":
        if not text:
            raise ValueError("no metro line")
        return [text]  # a line, not a train run: it meets riders recorded under the same line id
    services: list[str] = []
    prefix = ""
    for part in filter(None, (p.strip() for p in text.split("/"))):
        match = (_TRAIN_NO if mode == "train" else _FLIGHT_NO).fullmatch(part)
        if match is None:
            if services:
                continue
            raise ValueError(f"{mode} number not recognised")
        if mode == "train" and not match[1]:
            part = prefix + part  # "C6506/6507": the second number keeps the letter
        prefix = match[1] or prefix
        services.append(part)
    if not services:
        raise ValueError(f"no {mode} number")
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
        if last is not None and first.isdigit():
            carriages = [str(n) for n in range(int(first), int(last) + 1)]
        else:
            carriages = [("加" if extra else "") + first.lstrip("0")]
        return carriages, [seat] if seat else None
    if any(word in compact for word in _RELATIVE):
        caveats.append("carriage given as a relative position: whole train")
    else:
        caveats.append("carriage text not understood: whole train")
    return None, None


def print_report(report: ImportReport, stream: TextIO) -> None:
    print(f"records        {report.records:,}", file=stream)
    print(f"exposures      {report.exposures:,} written ({report.clean:,} records parsed cleanly)", file=stream)
    for title, counts in (
        ("not traced", report.not_traced),
        ("rejected", report.rejected),
        ("used, but", report.notes),
    ):
        for reason, count in counts.most_common():
            print(f"{title:14} {count:6,}  {reason}", file=stream)
