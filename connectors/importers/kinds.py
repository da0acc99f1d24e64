"""Every feed ``tracer import`` knows, by name: one line per kind (its module defines ``KIND``)."""

from __future__ import annotations

from connectors.importers import cases, manifest, registry
from connectors.importers.base import Kind

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        registry.KIND,
        cases.KIND,
        manifest.KIND,
    )
}
