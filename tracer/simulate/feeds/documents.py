"""The identity document of each simulated person, as feeds name people (docs/import.md).

Residents (``P…``) hold Shanghai resident ID cards; visitors (``V…``) ID cards of other provinces, or
passports. Numbers are valid (tracer/documents.py check character) and distinct: the birth date and
sequence number encode the person's index, the area code says resident or visitor. A test maps an
imported ``pid:`` back to the simulator's id by hashing each person's document with the same key.
"""

from __future__ import annotations

from datetime import date, timedelta

from tracer.documents import check_digit

_RESIDENT_AREAS = ("310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112", "310115")
_VISITOR_AREAS = ("110101", "320102", "330102", "440103", "510104")
_BORN = date(1950, 1, 1)
PASSPORT_EVERY = 4  # one visitor in four travels on a passport


def document(person: str) -> tuple[str, str]:
    """(kind, number) of ``person``, a simulator person id (``P00000012``, ``V000003``)."""
    index = int(person[1:])
    if person[0] == "V" and index % PASSPORT_EVERY == 0:
        return "passport", f"E{index:08d}"
    areas = _RESIDENT_AREAS if person[0] == "P" else _VISITOR_AREAS
    born = _BORN + timedelta(days=index // 1000)
    first17 = f"{areas[index % len(areas)]}{born:%Y%m%d}{index % 1000:03d}"
    return "id_card", first17 + check_digit(first17)
