"""``tracer import cases``: case reports keyed by ID document -> ``case`` events.

A health commission's list names each case by their ID number; the engine needs the same
``person_id`` the registry and the travel feeds give that person (connectors/importers/identity.py),
so cases come in through the same identity. A later row with the same case id updates the case (a
status change, an isolation time), as a later case event does. Dates and times are read as the
other importers read them: ``2020/1/15``, ``2020-01-15 08:30`` in the rules' time zone.
"""

from __future__ import annotations

import unicodedata

from connectors.importers.base import Context, Events, Kind, Record
from connectors.importers.identity import read_kind
from connectors.importers.report import Rejected
from connectors.importers.times import LocalTimes
from tracer.analysis.question import read_date
from tracer.errors import InputError
from tracer.events import STATUSES

REQUIRED = ("case_id", "id_type", "id_number", "status", "onset", "reported_at")
OPTIONAL = ("isolated_at",)
_STATUS = {status: status for status in STATUSES} | {
    "确诊": "confirmed", "无症状": "asymptomatic", "无症状感染者": "asymptomatic", "疑似": "suspected",
    "出院": "discharged", "排除": "excluded",
}


class Cases:
    def __init__(self, context: Context) -> None:
        self._ids = context.person_ids
        self._times = LocalTimes(context.settings.rules.zone)

    def row(self, record: Record, line: int) -> Events:
        person = self._ids.person_id(read_kind(record["id_type"]), record["id_number"])
        status = _STATUS.get(unicodedata.normalize("NFKC", record["status"]).strip().lower())
        if status is None:
            raise Rejected(f"status: expected one of {', '.join(STATUSES)}")
        try:
            onset = read_date(record["onset"])
        except InputError as exc:
            raise Rejected(f"onset {exc}") from None
        isolated = record["isolated_at"].strip()
        return [{
            "type": "case", "case_id": unicodedata.normalize("NFKC", record["case_id"]).strip(), "person_id": person,
            "status": status, "onset": onset,
            "isolated_at": self._times.read(isolated, "isolated_at") if isolated else None,
            "reported_at": self._times.read(record["reported_at"], "reported_at"),
        }]

    def end(self) -> None:
        """Nothing is held."""


KIND = Kind(
    name="cases",
    help="case reports (case id, ID type and number, status, onset, isolated and reported times) -> case events",
    what="a case list",
    required=REQUIRED,
    optional=OPTIONAL,
    start=Cases,
)
