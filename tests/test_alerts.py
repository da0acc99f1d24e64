"""Alert ids and records as the engine builds them, against their definitions written out."""

from __future__ import annotations

import hashlib

import orjson

from tracer.alerts import AlertIds, alert_id, alert_maker, build_alert
from tracer.events import Trip, format_time
from tracer.rules import Match, Window
from tracer.settings import RuleSettings
from tracer.sources import Source

RULES = RuleSettings()
HOUR = 3_600_000_000


def test_alert_ids_are_the_sha256_of_the_parts_joined():
    for via in (None, "X1"):
        parts = ("case", "C1", "P9", "metro", "L2", "2020-01-20") + (() if via is None else (via,))
        expected = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
        assert alert_id("case", "C1", "P9", "metro", "L2", "2020-01-20", via) == expected
        ids = AlertIds("case", "C1", "metro", "L2", "2020-01-20", via)
        assert ids("P9") == expected and ids.many(["P9", "P9"]) == [expected, expected]


def test_an_alert_is_the_schema_record_in_its_key_order():
    source = Source("v:C1\x1eX1", "C1", "P1", "X1", "X1", Window(0, 10 * HOUR))
    case_trip = Trip("T1", "X1", "metro", "L2", "2020-01-20", HOUR, 2 * HOUR, "3", "3A")
    first = Trip("T2", "P2", "metro", "L2", "2020-01-20", HOUR, 3 * HOUR, "3", None)
    second = Trip("T3", "P3", "metro", "L2", "2020-01-20", 0, HOUR + HOUR // 2, "3", "7C")
    make = alert_maker(source, "metro", "L2", "2020-01-20", True, RULES.zone)
    for contact, start, end in ((first, HOUR, 2 * HOUR), (second, HOUR, HOUR + HOUR // 2), (first, HOUR, 2 * HOUR)):
        found = Match("close", "metro.same_carriage", start, end, case_trip, contact)
        expected = {
            "v": 1, "alert_id": "a1", "action": "add", "level": "secondary", "source_kind": "case", "case_id": "C1",
            "case_person_id": "P1", "contact_person_id": contact.person_id, "via_person_id": "X1",
            "subdistrict": "310101002", "mode": "metro", "service": "L2", "date": "2020-01-20",
            "case_carriage": "3", "case_seat": "3A", "contact_carriage": "3", "contact_seat": contact.seat,
            "rule": "metro.same_carriage", "exposure_start": format_time(start, RULES.zone),
            "exposure_end": format_time(end, RULES.zone), "window_truncated": True,
        }
        made = make("a1", found, "secondary", "310101002")
        assert orjson.dumps(made) == orjson.dumps(expected)  # same fields, same order: the same bytes
        assert build_alert("a1", source, found, "secondary", "310101002", RULES.zone, True) == made
