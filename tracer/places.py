"""Shanghai's 234 township-level units (街道/镇), from the packaged NBS area-code list."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Subdistrict:
    code: str  # 9-digit statistical area code, e.g. 310101002
    name: str  # e.g. 南京东路街道
    district: str  # 6-digit district code, e.g. 310101


@cache
def subdistricts() -> dict[str, Subdistrict]:
    """Code -> subdistrict, in file order (the CSV's first line is its provenance comment)."""
    text = resources.files("tracer").joinpath("data/shanghai_subdistricts.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {row["code"]: Subdistrict(row["code"], row["name"], row["areaCode"]) for row in rows}
