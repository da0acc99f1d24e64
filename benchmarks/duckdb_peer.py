"""The batch peer of a whole day: DuckDB reads the NDJSON events itself and self-joins the direct
contacts of the cases (benchmarks/contact_join.py, the query the SQLite peer runs too), each with
the contact's home subdistrict from the registry lines of the same file.

`python -m benchmarks.duckdb_peer EVENTS --out CONTACTS.jsonl [--config TOML]` writes one line per
(case, contact, mode, service, date) with its level and subdistrict, and prints the time of each
step as JSON on its last line. It runs as its own process so that its time and memory are those of
a whole job, reading the file included.

Lines tracer would dead-letter are left out the same way: broken JSON (read as nulls), a missing
field, an unknown mode, berth, role or status, times that are not times or that are reversed, a
ride longer than ``max_ride_hours``, a malformed ``crew_rows``, a case onset more than 14 days after
its report, a subdistrict that is not 9 digits. The last valid line of a trip id, case id or person
wins, in file order. Not mirrored, since the simulated day has none of them: control characters
in ids, ``h:`` ids, the service-date bounds and the retention horizon (city_day.py counts the dead
letters the engine gives for those two, so a day that needs them shows).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson

from benchmarks.contact_join import direct_contacts
from tracer.events import BERTHS, MODES, ROLES, STATUSES, TRACED_STATUSES
from tracer.registry import Subdistricts
from tracer.rules import MAX_ONSET_AFTER_REPORT_DAYS
from tracer.settings import Settings, load_settings

_TEXT = ("type", "trip_id", "person_id", "mode", "service", "date", "board_time", "alight_time", "carriage", "seat",
         "berth", "compartment", "role", "crew_rows", "subdistrict", "case_id", "status", "onset", "isolated_at",
         "reported_at")
_OPEN_END = 1 << 62  # an open case window, as in tracer/rules.py
_CREW_ROWS = r"^\s*([0-9]{1,3})\s*(?:-\s*([0-9]{1,3})\s*)?$"  # tracer/events.py's pattern


def run(events: Path, out: Path, settings: Settings) -> dict[str, Any]:
    """Write the direct contacts of ``events`` to ``out``; return the seconds of each step."""
    rules = settings.rules
    steps: dict[str, float] = {}
    began = time.perf_counter()
    db = duckdb.connect()
    db.execute(f"SET TimeZone = {_text(rules.timezone)}")
    columns = {name: "VARCHAR" for name in _TEXT} | {"sealed": "BOOLEAN"}
    # a table keeps the file's order in its rowid: the last line of an id wins
    db.execute(
        f"CREATE TABLE raw AS SELECT * FROM read_json({_text(str(events))}, format = 'newline_delimited', "
        f"ignore_errors = true, columns = {columns})"
    )
    steps["read_s"] = _lap(began, steps)
    max_ride = int(rules.max_ride_hours * 3_600_000_000)
    db.execute(f"""
CREATE TABLE trips AS
SELECT trip_id, person_id, mode, service, date, board, alight, carriage,
       TRY_CAST(regexp_extract(trim(seat), '^[0-9]{{1,4}}') AS INTEGER) AS seat_row,
       coalesce(nullif(berth, ''), 'seat') AS berth, compartment,
       CASE WHEN regexp_full_match(compartment, '-?[0-9]+') THEN TRY_CAST(compartment AS BIGINT) END AS bay,
       CASE WHEN sealed = false THEN 0 ELSE 1 END AS sealed,
       CASE WHEN role = 'crew' THEN 1 ELSE 0 END AS crew,
       CAST(regexp_extract(rows_served, '{_CREW_ROWS}', 1) AS INTEGER) AS crew_low,
       coalesce(CAST(nullif(regexp_extract(rows_served, '{_CREW_ROWS}', 2), '') AS INTEGER), crew_low) AS crew_high
FROM (
    SELECT rowid AS line, trip_id, person_id, mode, service, date, sealed, role, berth,
           nullif(crew_rows, '') AS rows_served, nullif(trim(carriage), '') AS carriage, seat,
           nullif(trim(compartment), '') AS compartment,
           epoch_us(TRY_CAST(board_time AS TIMESTAMPTZ)) AS board,
           epoch_us(TRY_CAST(alight_time AS TIMESTAMPTZ)) AS alight
    FROM raw WHERE type = 'trip'
)
WHERE {_id("person_id")} AND {_id("service")} AND (trip_id IS NULL OR {_id("trip_id")}) AND {_date("date")}
  AND mode IN {_list(MODES)} AND coalesce(nullif(berth, ''), 'seat') IN {_list(BERTHS)}
  AND coalesce(nullif(role, ''), 'passenger') IN {_list(ROLES)}
  AND alight > board AND alight - board <= {max_ride}
  AND (rows_served IS NULL OR (regexp_full_match(rows_served, '{_CREW_ROWS}')
       AND coalesce(TRY_CAST(nullif(regexp_extract(rows_served, '{_CREW_ROWS}', 2), '') AS INTEGER), 999)
           >= CAST(regexp_extract(rows_served, '{_CREW_ROWS}', 1) AS INTEGER)))
QUALIFY trip_id IS NULL OR row_number() OVER (PARTITION BY trip_id ORDER BY line DESC) = 1
""")
    db.execute(f"""
CREATE TABLE cases AS
SELECT case_id, person_id, CASE WHEN status IN {_list(TRACED_STATUSES)} THEN 1 ELSE 0 END AS traced,
       epoch_us(timezone({_text(rules.timezone)}, CAST(CAST(onset AS DATE) - {rules.lookback_days} AS TIMESTAMP)))
           AS window_start,
       coalesce(epoch_us(TRY_CAST(isolated_at AS TIMESTAMPTZ)), {_OPEN_END}) AS window_end
FROM (SELECT rowid AS line, * FROM raw WHERE type = 'case')
WHERE {_id("case_id")} AND {_id("person_id")} AND status IN {_list(STATUSES)} AND {_date("onset")}
  AND TRY_CAST(reported_at AS TIMESTAMPTZ) IS NOT NULL
  AND (isolated_at IS NULL OR TRY_CAST(isolated_at AS TIMESTAMPTZ) IS NOT NULL)
  AND CAST(onset AS DATE)
      <= CAST(CAST(reported_at AS TIMESTAMPTZ) AS DATE) + {MAX_ONSET_AFTER_REPORT_DAYS}
QUALIFY row_number() OVER (PARTITION BY case_id ORDER BY line DESC) = 1
""")
    steps["tables_s"] = _lap(began, steps)
    db.execute(f"CREATE TABLE direct AS {direct_contacts(rules)}")
    steps["join_s"] = _lap(began, steps)
    codes = sorted(Subdistricts.load(settings).codes)
    db.execute(f"""
CREATE TABLE homes AS
SELECT person_id, CASE WHEN subdistrict IN (SELECT unnest(?::VARCHAR[])) THEN subdistrict END AS subdistrict
FROM (SELECT rowid AS line, * FROM raw WHERE type = 'person')
WHERE {_id("person_id")} AND regexp_full_match(subdistrict, '[0-9]{{9}}')
QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY line DESC) = 1
""", [codes])
    db.execute(f"""
COPY (SELECT d.*, h.subdistrict FROM direct d LEFT JOIN homes h USING (person_id))
TO {_text(str(out))} (FORMAT json)
""")
    steps["registry_s"] = _lap(began, steps)
    steps["seconds"] = time.perf_counter() - began
    return steps


def _lap(began: float, steps: dict[str, float]) -> float:
    """Seconds since the end of the previous step."""
    return time.perf_counter() - began - sum(steps.values())


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _list(values: Any) -> str:
    return "(" + ", ".join(_text(v) for v in sorted(values)) + ")"


def _id(column: str) -> str:
    """A required id: non-empty, not blank, at most 128 characters (tracer/events.py)."""
    return f"trim({column}) <> '' AND length({column}) <= 128"


def _date(column: str) -> str:
    return f"regexp_full_match({column}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') AND TRY_CAST({column} AS DATE) IS NOT NULL"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.duckdb_peer", description=__doc__)
    parser.add_argument("events", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the contacts, one JSON line each")
    parser.add_argument("--config", type=Path, help="the TOML file tracer run is given, for the same rules")
    args = parser.parse_args()
    print(orjson.dumps(run(args.events, args.out, load_settings(args.config))).decode())


if __name__ == "__main__":
    main()
