"""The batch peers' one reading of docs/rules.md: the direct contacts of cases as a SQL self-join.

SQLite (benchmarks/batch.py) and DuckDB (benchmarks/duckdb_peer.py) both run this query, so the
rules are written once for both; each peer only loads the two tables its own way:

- ``trips(trip_id, person_id, mode, service, date, board, alight, carriage, seat_row, berth,
  compartment, bay, sealed, crew, crew_low, crew_high)``: the trips that are live at the end of the
  stream (the last delivery of each ``trip_id``), times in epoch microseconds; ``carriage`` and
  ``compartment`` trimmed text, ``seat_row`` the seat's leading number, ``bay`` the compartment when it
  is an integer, ``sealed`` and ``crew`` 0 or 1, ``crew_low``/``crew_high`` the rows a crew member
  serves (null: the whole cabin);
- ``cases(case_id, person_id, traced, window_start, window_end)``: each case's last event, its
  window ``[start, end)`` in epoch microseconds (an open window ends at 2**62), ``traced`` 0 or 1.

One row per (case, contact, mode, service, date), as the engine's alert, with its level: the best
of the ride pairs, close over general. Only portable SQL: no ``greatest`` (SQLite has none), no
scalar ``max(a, b, c)`` (DuckDB has none).
"""

from __future__ import annotations

import math

from tracer.rules import Level
from tracer.settings import RuleSettings

CLOSE, GENERAL = 2, 1  # ranks: the best pair is the highest


def direct_contacts(rules: RuleSettings, only: str = "") -> str:
    """The query; ``only`` is more of the WHERE clause (``AND c.case_id = ?`` for one case)."""
    # max(starts) - ... > m for the max and the min is the same as for every start and end pair,
    # and an integer difference is > m exactly when it is > floor(m)
    floor = math.floor(rules.min_overlap_seconds * 1_000_000)
    overlap = "\n  AND ".join(
        f"{end} - {start} > {floor}"
        for start in ("k.board", "r.board", "c.window_start")
        for end in ("k.alight", "r.alight", "c.window_end")
    )
    return f"""
SELECT c.case_id, r.person_id, r.mode, r.service, r.date,
       CASE max({_rank(rules)}) WHEN {CLOSE} THEN '{Level.CLOSE}' ELSE '{Level.GENERAL}' END AS level
FROM cases c
JOIN trips k ON k.person_id = c.person_id
JOIN trips r ON r.mode = k.mode AND r.service = k.service AND r.date = k.date AND r.person_id <> c.person_id
WHERE c.traced = 1 {only}
  AND {overlap}
GROUP BY c.case_id, r.person_id, r.mode, r.service, r.date
"""


def _rank(rules: RuleSettings) -> str:
    """The tables of docs/rules.md for case ride ``k`` and contact ride ``r`` (tracer/rules.py's
    ``classify``). A comparison with null is unknown, and an unknown WHEN falls through: a row or
    carriage unknown on a side that needs it is not close."""
    return f"""CASE
    WHEN k.mode = 'flight' THEN CASE
        WHEN k.crew = 1 AND r.crew = 1 THEN {CLOSE}
        WHEN k.crew = 1 THEN CASE
            WHEN k.crew_low IS NULL OR r.seat_row BETWEEN k.crew_low AND k.crew_high THEN {CLOSE} ELSE {GENERAL} END
        WHEN r.crew = 1 THEN CASE
            WHEN r.crew_low IS NULL OR k.seat_row BETWEEN r.crew_low AND r.crew_high THEN {CLOSE} ELSE {GENERAL} END
        WHEN abs(k.seat_row - r.seat_row) <= {rules.flight_row_span} THEN {CLOSE}
        ELSE {GENERAL} END
    WHEN k.mode = 'train' THEN CASE
        WHEN k.carriage = r.carriage AND (r.crew = 1 OR CASE
            WHEN k.berth = 'soft_sleeper' AND k.compartment IS NOT NULL THEN k.compartment = r.compartment
            WHEN k.sealed = 1 OR k.berth = 'soft_sleeper' THEN 1 = 1
            ELSE abs(k.bay - r.bay) <= {rules.train_bay_span} END) THEN {CLOSE}
        ELSE {GENERAL} END
    WHEN k.carriage = r.carriage THEN {CLOSE}
    ELSE {GENERAL} END"""
