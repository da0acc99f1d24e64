"""The follow-up views of the reference oracle against hand-made scenarios at the edges of
docs/rules.md ("Follow-up and health status"). Every expected value is worked out by hand here."""

from __future__ import annotations

from typing import Any

from tests.builders import at, case, person, trip
from tracer.oracle import format_time, parse_time, read_stream
from tracer.oracle_views import OracleViews, expected_views
from tracer.settings import RuleSettings, Settings, StatusSettings

HOME, OTHER = "310115123", "310101002"  # 高东镇, 南京东路街道
# Case C1 (person P1, reported 2020-01-22 12:00) on flight MU5101 of 2020-01-20, 08:00-10:00:
# A (row 11) is a close contact, B (row 30) a general one.
BASE = [person("A", HOME), case("C1", "P1"), trip("P1", seat="10A"), trip("A", seat="11A"), trip("B", seat="30A")]
REPORTED = at("12:00", "2020-01-22")  # when BASE's alerts are known: after their exposure end
DUE = at("12:00", "2020-01-23")  # REPORTED + 24 h (close)
UNTIL = at("10:00", "2020-02-03")  # exposure end 2020-01-20 10:00 + 14 days
ROW_FIELDS = [
    "person_id",
    "subdistrict",
    "subdistrict_name",
    "level",
    "case_ids",
    "first_alert",
    "last_exposure_end",
    "observation_until",
    "color",
    "followup",
    "answered",
    "due_by",
    "overdue",
]


def micros(text: str) -> int:
    moment = parse_time(text)
    assert moment is not None
    return moment


def views(
    *events: dict, now: str | int | None = None, rules: RuleSettings | None = None, **numbers: Any
) -> OracleViews:
    """The views at ``now`` (ISO or epoch microseconds; None: event time); ``numbers`` change the
    ``[status]`` defaults."""
    moment = micros(now) if isinstance(now, str) else now
    return expected_views(list(events), Settings(rules or RuleSettings(), status=StatusSettings(**numbers)), moment)


def followup(person_id: str, outcome: str, when: str, **fields: Any) -> dict:
    return {"type": "followup", "person_id": person_id, "outcome": outcome, "at": when} | fields


def listed(found: OracleViews, include_general: bool = False) -> dict[str, dict]:
    """person_id -> their call-list row, whichever office it is in."""
    lists = found.calllists_general if include_general else found.calllists
    rows = [row for rows in lists.values() for row in rows]
    assert len({row["person_id"] for row in rows}) == len(rows)  # one row a person
    return {row["person_id"]: row for row in rows}


def row(found: OracleViews, person_id: str, include_general: bool = False) -> dict:
    return listed(found, include_general)[person_id]


EXPOSURE = {"type": "exposure", "exposure_id": "E1", "mode": "flight", "service": "MU5101", "date": "2020-01-20"}
EXPOSURE |= {"seats": ["20A"]}  # no start or end: the riders' own rides bound it


def exposed(person_id: str, alight: str, day: str = "2020-01-20") -> dict:
    """A close contact of EXPOSURE (row 20 of MU5101) whose alert is known when they alight."""
    return trip(person_id, day=day, seat="20B", alight=alight)


# Call-list rows


def test_row_fields_in_order_and_general_rows_only_when_included() -> None:
    found = views(*BASE, now=at("13:00", "2020-01-22"))
    row_a = {
        "person_id": "A",
        "subdistrict": HOME,
        "subdistrict_name": "高东镇",
        "level": "close",
        "case_ids": ["C1"],
        "first_alert": REPORTED,
        "last_exposure_end": at("10:00"),
        "observation_until": UNTIL,
        "color": "red",
        "followup": None,
        "answered": None,
        "due_by": DUE,
        "overdue": False,
    }
    assert found.calllists == {HOME: [row_a]}
    assert list(found.calllists[HOME][0]) == ROW_FIELDS
    row_b = row_a | {"person_id": "B", "subdistrict": "unassigned", "subdistrict_name": None, "level": "general"}
    row_b |= {"color": "yellow", "due_by": at("12:00", "2020-01-25")}  # general: 72 h
    assert found.calllists_general == {HOME: [row_a], "unassigned": [row_b]}
    assert found.kpis["city"]["alerted"] == 1  # general rows are not in the KPIs


def test_include_general_joins_general_alerts_into_the_row() -> None:
    later = {"service": "MU5102", "day": "2020-01-21", "board": "18:00", "alight": "20:00"}
    events = [*BASE, trip("P1", seat="10A", **later), trip("A", seat="40A", **later)]  # general, a day later
    found = views(*events, now=at("13:00", "2020-01-22"))
    assert row(found, "A", include_general=True) == row(found, "A") | {
        "last_exposure_end": at("20:00", "2020-01-21"),
        "observation_until": at("20:00", "2020-02-04"),
    }
    assert row(found, "A")["last_exposure_end"] == at("10:00")


def test_first_alert_is_the_later_of_exposure_end_and_report_secondary_due_in_48h() -> None:
    metro = {"mode": "metro", "service": "L1-0121-1000", "day": "2020-01-21", "carriage": "1"}
    chain = [trip("P1", seat="10A"), trip("X", seat="11A"), trip("X", board="10:00", alight="11:00", **metro)]
    chain.append(trip("Y", board="10:00", alight="11:00", **metro))  # secondary through X
    found = views(case("C1", "P1"), *chain, now=REPORTED)
    assert (row(found, "X")["first_alert"], row(found, "X")["due_by"]) == (REPORTED, DUE)
    secondary = row(found, "Y")
    assert secondary["level"] == "secondary" and secondary["color"] == "yellow"
    assert (secondary["first_alert"], secondary["due_by"]) == (REPORTED, at("12:00", "2020-01-24"))
    assert secondary["observation_until"] == at("11:00", "2020-02-04")
    early = views(case("C1", "P1", reported_at=at("10:30", "2020-01-21")), *chain, now=REPORTED)
    assert row(early, "X")["first_alert"] == at("10:30", "2020-01-21")
    assert row(early, "Y")["first_alert"] == at("11:00", "2020-01-21")
    published = views(EXPOSURE, exposed("D", "09:00"), now=REPORTED)
    assert row(published, "D")["first_alert"] == at("09:00")


def test_calllist_order_overdue_then_not_yet_due_by_due_by_then_answered_by_first_alert() -> None:
    events = [
        EXPOSURE,
        exposed("D", "09:00"),  # due 2020-01-21 09:00
        exposed("F", "09:30"),
        exposed("C", "09:30"),  # the same due_by as F: person id decides
        exposed("G", "10:00"),
        exposed("A", "08:30"),
        followup("A", "reached", at("09:00")),
        exposed("B", "10:00"),
        followup("B", "quarantined", at("10:30")),
        trip("H", seat="30A", alight="08:45"),  # general: due 72 h later, after B's due_by
        followup("H", "reached", at("09:00")),
    ]
    found = views(*events, now=at("09:30", "2020-01-21"))
    order = [(row["person_id"], row["overdue"]) for row in found.calllists["unassigned"]]
    assert order == [("D", True), ("C", True), ("F", True), ("G", False), ("A", False), ("B", False)]
    answered = [row["person_id"] for row in found.calllists_general["unassigned"] if row["answered"]]
    assert answered == ["A", "H", "B"]  # by first_alert, not by due_by


def test_overdue_exactly_at_due_by_and_only_an_answer_after_first_alert_clears_it() -> None:
    def overdue(*events: dict, now: str | int = DUE) -> bool:
        return row(views(*BASE, *events, now=now), "A")["overdue"]

    assert not overdue(now=micros(DUE) - 1)
    assert overdue()
    assert overdue(followup("A", "reached", at("11:59:59", "2020-01-22")))  # before the alert was known
    assert overdue(followup("A", "unreachable", at("13:00", "2020-01-22")))  # not an answer
    for outcome in ("reached", "quarantined", "released"):
        assert not overdue(followup("A", outcome, REPORTED))
    found = views(*BASE, followup("A", "unreachable", at("13:00", "2020-01-22")), now=DUE)
    assert row(found, "A")["followup"] == {
        "outcome": "unreachable",
        "at": at("13:00", "2020-01-22"),
        "by": None,
        "note": None,
    }
    assert (found.kpis["city"]["overdue"], found.kpis["city"]["unreachable"]) == (1, 1)


def test_without_event_time_nothing_is_overdue_and_every_reason_counts() -> None:
    found = views(*BASE)  # 3 trips, fewer than the quorum of 100
    assert found.now is None and found.kpis["at"] is None
    assert not row(found, "A")["overdue"]
    assert found.status["A"]["color"] == "red"


def test_event_time_is_the_quorum_th_latest_board_time_of_valid_trips() -> None:
    events = [*BASE, trip("B", seat="31A", board="07:30"), trip("P1", alight="07:00")]  # the last one is invalid
    assert views(*events, rules=RuleSettings(event_time_quorum=3)).now == micros(at("08:00"))
    assert views(*events, rules=RuleSettings(event_time_quorum=4)).now == micros(at("07:30"))
    assert views(*events, rules=RuleSettings(event_time_quorum=5)).now is None
    redelivered = views(*events, BASE[-1], rules=RuleSettings(event_time_quorum=5))  # every accepted line counts
    assert redelivered.now == micros(at("07:30"))
    assert redelivered.kpis["at"] == at("07:30")


def test_person_moving_office_moves_the_row() -> None:
    found = views(*BASE, person("A", OTHER), now=REPORTED)
    assert list(found.calllists) == [OTHER]
    assert (row(found, "A")["subdistrict"], row(found, "A")["subdistrict_name"]) == (OTHER, "南京东路街道")
    assert [kpi["subdistrict"] for kpi in found.kpis["offices"]] == [OTHER]
    moved_back = views(*BASE, person("A", OTHER), person("A", HOME), now=REPORTED)
    assert list(moved_back.calllists) == [HOME]


# Follow-ups


def test_followup_before_the_alert_in_stream_order_counts_the_same() -> None:
    reached = followup("A", "reached", at("13:00", "2020-01-22"), by="310115123", note="at home")
    first, last = views(reached, *BASE, now=DUE), views(*BASE, reached, now=DUE)
    assert first == last
    assert row(first, "A")["answered"] == at("13:00", "2020-01-22")
    assert row(first, "A")["followup"] == {
        "outcome": "reached",
        "at": at("13:00", "2020-01-22"),
        "by": "310115123",
        "note": "at home",
    }


def test_followup_for_an_unknown_person_is_kept_and_counted_once_alerted() -> None:
    tip = followup("Z", "reached", at("12:30", "2020-01-22"))
    alone = views(*BASE, tip, now=REPORTED)
    assert "Z" not in listed(alone) and "Z" not in alone.status
    found = views(*BASE, tip, trip("Z", seat="12A"), now=REPORTED)
    assert row(found, "Z")["answered"] == at("12:30", "2020-01-22")
    assert (found.kpis["city"]["alerted"], found.kpis["city"]["reached_2h"]) == (2, 1)


def test_retracted_alert_after_reached_leaves_no_row_but_keeps_the_followup() -> None:
    close, general = trip("A", seat="11A", trip_id="tA"), trip("A", seat="40A", trip_id="tA")
    reached = followup("A", "reached", at("13:00", "2020-01-22"))
    events = [*BASE[:3], close, reached, general]  # the trip correction downgrades A to general
    found = views(*events, now=REPORTED)
    assert found.calllists == {} and found.kpis["offices"] == []
    assert row(found, "A", include_general=True)["answered"] == at("13:00", "2020-01-22")
    gone = views(*events, case("C1", "P1", status="excluded"), now=REPORTED)
    assert gone.calllists_general == {} and gone.status == {}


def test_followups_out_of_order_the_latest_is_the_greatest_at_ties_by_outcome_by_note() -> None:
    def latest(*events: dict) -> dict:
        forward, backward = views(*BASE, *events, now=DUE), views(*BASE, *reversed(events), now=DUE)
        assert forward == backward
        return row(forward, "A")["followup"]

    late, early = at("16:00", "2020-01-22"), at("14:00", "2020-01-22")
    assert latest(followup("A", "quarantined", late), followup("A", "reached", early))["at"] == late
    assert latest(followup("A", "quarantined", late), followup("A", "reached", late))["outcome"] == "reached"
    assert latest(followup("A", "reached", late, by="310115123"), followup("A", "reached", late))["by"] == "310115123"
    assert latest(followup("A", "reached", late, by="b"), followup("A", "reached", late, by="a"))["by"] == "b"
    assert latest(followup("A", "reached", late, note="x"), followup("A", "reached", late))["note"] == "x"
    answered = views(*BASE, followup("A", "quarantined", late), followup("A", "reached", early), now=DUE)
    assert row(answered, "A")["answered"] == early


def test_identical_followups_are_one_and_a_quarantine_is_a_quarantined_followup() -> None:
    when = at("13:00", "2020-01-22")
    twice = [followup("A", "reached", when), followup("A", "reached", when), followup("A", "reached", when, by="x")]
    quarantine = {"type": "quarantine", "person_id": "A", "at": "2020-01-22T05:00:00+00:00"}
    stream = read_stream([*twice, quarantine, followup("A", "quarantined", when)])
    assert len(stream.followups["A"]) == 3
    found = views(*BASE, quarantine, now=DUE)
    assert row(found, "A")["followup"]["outcome"] == "quarantined"
    assert found.kpis["city"]["quarantined"] == 1


def test_invalid_followups_are_skipped() -> None:
    when = at("13:00", "2020-01-22")
    invalid = [
        followup("A", "called", when),
        followup("A", "reached", "2020-01-22T13:00:00"),  # no offset
        followup("A", "reached", 1579669200),
        followup("A", "reached", when, by=""),
        followup("A", "reached", when, by=310115123),
        followup("A", "reached", when, note="x" * 501),
        followup("A", "reached", when, note="line\nbreak"),
        followup("", "reached", when),
    ]
    for event in invalid:
        assert row(views(*BASE, event, now=REPORTED), "A")["followup"] is None, event
    longest = followup("A", "reached", when, note="观" * 500)
    assert row(views(*BASE, longest, now=REPORTED), "A")["answered"] == when


# Health status


def test_case_person_is_red_without_until_discharged_and_excluded_give_no_reason() -> None:
    for status in ("confirmed", "asymptomatic", "suspected"):
        found = views(*BASE, case("C1", "P1", status=status), now=REPORTED)
        assert found.status["P1"] == {
            "person_id": "P1",
            "color": "red",
            "reasons": [{"kind": "case", "case_id": "C1", "status": status}],
            "until": None,
        }
    discharged = views(*BASE, case("C1", "P1", status="discharged"), now=REPORTED)
    assert "P1" not in discharged.status
    assert discharged.status["A"]["color"] == "red"  # still traced
    assert "A" in listed(discharged)
    excluded = views(*BASE, case("C1", "P1", status="discharged"), case("C1", "P1", status="excluded"), now=REPORTED)
    assert excluded.status == {} and excluded.calllists_general == {}


def test_reasons_one_per_level_source_and_id_in_the_documented_order() -> None:
    next_flight = {"service": "MU5102", "day": "2020-01-21", "board": "10:00", "alight": "12:00"}
    train = {"mode": "train", "service": "G7", "day": "2020-01-21", "board": "09:00", "alight": "13:00"}
    events = [
        *BASE,
        trip("P1", seat="1A", **next_flight),
        trip("A", seat="2A", **next_flight),  # C1 again: one reason, the latest exposure end
        case("C0", "Q"),
        trip("Q", carriage="1", **train),
        trip("A", carriage="2", **train),  # general contact of C0
        EXPOSURE | {"start": at("08:00"), "end": at("09:00"), "seats": ["12A"]},  # close: A is in row 11
    ]
    found = views(*events, now=REPORTED)
    c1 = {"kind": "contact", "level": "close", "source_kind": "case", "case_id": "C1"}
    c1 |= {"exposure_end": at("12:00", "2020-01-21"), "until": at("12:00", "2020-02-04")}
    e1 = {"kind": "contact", "level": "close", "source_kind": "exposure", "case_id": "E1"}
    e1 |= {"exposure_end": at("09:00"), "until": at("09:00", "2020-02-03")}
    c0 = {"kind": "contact", "level": "general", "source_kind": "case", "case_id": "C0"}
    c0 |= {"exposure_end": at("13:00", "2020-01-21"), "until": at("13:00", "2020-02-04")}
    # until: the latest among the red reasons; the later yellow one does not turn red back
    assert found.status["A"] == {"person_id": "A", "color": "red", "reasons": [c1, e1, c0], "until": c1["until"]}
    assert row(found, "A")["case_ids"] == ["C1", "E1"]
    also_a_case = views(*events, case("C9", "A", status="suspected"), now=REPORTED).status["A"]
    assert also_a_case["reasons"][0] == {"kind": "case", "case_id": "C9", "status": "suspected"}
    assert also_a_case["reasons"][1:] == [c1, e1, c0] and also_a_case["until"] is None


def test_a_reason_is_over_exactly_at_its_until() -> None:
    before = views(*BASE, now=micros(UNTIL) - 1)
    assert (before.status["A"]["color"], before.status["A"]["until"]) == ("red", UNTIL)
    assert before.status["B"]["color"] == "yellow"
    over = views(*BASE, now=UNTIL)
    assert list(over.status) == ["P1"]
    assert (row(over, "A")["color"], row(over, "A")["observation_until"]) == ("green", UNTIL)


def test_colours_are_settings_and_a_green_colour_gives_no_reason() -> None:
    later = {"service": "MU5102", "day": "2020-01-21", "board": "18:00", "alight": "20:00"}
    general = [trip("P1", seat="10A", **later), trip("A", seat="40A", **later)]
    found = views(*BASE, *general, now=REPORTED, general_color="green", close_color="yellow", close_days=5)
    assert [reason["level"] for reason in found.status["A"]["reasons"]] == ["close"]
    assert "B" not in found.status
    assert row(found, "B", include_general=True)["color"] == "green"
    assert (found.status["A"]["color"], found.status["A"]["until"]) == ("yellow", at("10:00", "2020-01-25"))
    assert row(found, "A")["observation_until"] == at("10:00", "2020-01-25")


def test_release_ends_observation_of_the_exposures_ended_at_or_before_it() -> None:
    released = views(*BASE, followup("A", "released", at("09:00", "2020-01-25")), now=DUE)
    assert "A" not in released.status
    assert row(released, "A")["observation_until"] is None
    assert row(released, "A")["answered"] == at("09:00", "2020-01-25")
    assert released.kpis["city"]["released"] == 1
    at_the_end = views(*BASE, followup("A", "released", at("10:00")), now=DUE)  # before the alert was known
    assert "A" not in at_the_end.status and row(at_the_end, "A")["answered"] is None
    just_before = views(*BASE, followup("A", "released", at("09:59:59")), now=DUE)
    assert just_before.status["A"]["color"] == "red"
    later = {"service": "MU5102", "day": "2020-01-21", "board": "10:00", "alight": "12:00"}
    again = [trip("P1", seat="1A", **later), trip("A", seat="2A", **later)]  # a later exposure: a new observation
    found = views(*BASE, followup("A", "released", at("18:00")), *again, now=DUE)
    assert [reason["exposure_end"] for reason in found.status["A"]["reasons"]] == [at("12:00", "2020-01-21")]
    assert row(found, "A")["observation_until"] == at("12:00", "2020-02-04")


# KPIs


def test_kpis_offices_slowest_first_median_the_lower_middle() -> None:
    def resident(person_id: str, office: str, hours: float | None = None, outcome: str = "reached") -> list[dict]:
        """A close contact of E1, known at 10:00 (the flight lands), answered ``hours`` later."""
        events = [person(person_id, office), exposed(person_id, "10:00")]
        if hours is not None:
            when = micros(at("10:00")) + round(hours * 3_600_000_000)
            events.append(followup(person_id, outcome, format_time(when, RuleSettings())))
        return events

    o1, o2, o3, o4, o5, o6 = "310101002", "310115123", "310104003", "310104004", "310104007", "310104008"
    events = [
        EXPOSURE,
        EXPOSURE | {"exposure_id": "E2", "date": "2020-01-21"},
        *resident("P11", o1, 2),  # exactly 2 h: reached within 2 h
        *resident("P12", o1, 3 + 1 / 3, "quarantined"),
        *resident("P13", o1, 5, "released"),
        *resident("P14", o1, 30, "quarantined"),
        *resident("P21", o2, 1),
        *resident("P22", o2),  # due 2020-01-21 10:00: overdue
        *resident("P31", o3, 25),
        *resident("P32", o3, 26),
        person("P41", o4),
        exposed("P41", "10:00", day="2020-01-21"),  # E2: known a day later, not yet due
        followup("P41", "unreachable", at("11:00", "2020-01-21")),
        *resident("P51", o5, 25),
        *resident("P61", o6, 28),
    ]
    kpis = views(*events, now=at("16:00", "2020-01-21")).kpis
    assert kpis["at"] == at("16:00", "2020-01-21")
    assert [kpi["subdistrict"] for kpi in kpis["offices"]] == [o2, o4, o6, o3, o5, o1]
    assert kpis["offices"][-1] == {
        "subdistrict": o1,
        "name": "南京东路街道",
        "alerted": 4,
        "reached_2h": 1,
        "reached_12h": 3,
        "reached_24h": 3,
        "median_hours_to_reach": 3.333,  # the lower middle of 2, 3.33, 5 and 30 hours
        "overdue": 0,
        "quarantined": 2,
        "released": 1,
        "unreachable": 0,
    }
    assert [kpi["median_hours_to_reach"] for kpi in kpis["offices"]] == [1.0, None, 28.0, 25.0, 25.0, 3.333]
    assert kpis["city"] == {
        "subdistrict": "city",
        "name": None,
        "alerted": 11,
        "reached_2h": 2,
        "reached_12h": 4,
        "reached_24h": 4,
        "median_hours_to_reach": 25.0,  # 1, 2, 3.33, 5, 25, 25, 26, 28, 30
        "overdue": 1,
        "quarantined": 2,
        "released": 1,
        "unreachable": 1,
    }
