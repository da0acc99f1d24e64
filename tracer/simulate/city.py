"""Shanghai's 234 real subdistricts and the residents spread over them.

Densities are very uneven in the real city (central 街道 against rural 镇), so each subdistrict gets
a heavy-tailed (Pareto) weight: a few crowded places, a long tail of thin ones. Travellers who are not
residents (visitors) ride too; they have no ``person`` event, as the registry only knows residents.
"""

from __future__ import annotations

import csv
import random
from importlib import resources
from itertools import accumulate

VISITOR_SHARE = 0.02  # of riders; their alerts go to the unassigned queue


def subdistrict_codes() -> tuple[str, ...]:
    """The 9-digit codes of tracer/data/shanghai_subdistricts.csv (after its '# Source' line)."""
    text = resources.files("tracer").joinpath("data/shanghai_subdistricts.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return tuple(sorted(row["code"] for row in rows))


class Population:
    """Residents ``P…`` (indices 0..size-1) with a home subdistrict each, and a pool of visitors ``V…``."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size = size
        self.codes = subdistrict_codes()
        self._cumulative = list(accumulate(rng.paretovariate(1.2) for _ in self.codes))
        self.visitors = max(1, round(size * VISITOR_SHARE / (1 - VISITOR_SHARE)))
        self._resident = f"P%0{max(8, len(str(size)))}d"
        self._visitor = f"V%0{max(6, len(str(self.visitors)))}d"

    def homes(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.codes, cum_weights=self._cumulative, k=count)

    def resident(self, index: int) -> str:
        return self._resident % index

    def index(self, person: str) -> int | None:
        """The index of resident ``person``; None for a visitor."""
        return int(person[1:]) if person[0] == "P" else None

    def rider(self, draw: float) -> str:
        """A rider for a uniform ``draw`` in [0, 1): mostly residents, sometimes a visitor."""
        index = int(draw * (self.size + self.visitors))
        if index < self.size:
            return self._resident % index
        return self._visitor % (index - self.size)
