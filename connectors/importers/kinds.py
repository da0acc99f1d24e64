"""Every feed ``tracer import`` knows, by name: one line per kind (its module defines ``KIND``)."""

from __future__ import annotations

from connectors.importers import carriage, cases, manifest, registry, taps, tickets
from connectors.importers.base import Kind

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        registry.KIND,
        cases.KIND,
        manifest.KIND,
        tickets.KIND,
        taps.KIND,
        carriage.KIND,
    )
}
