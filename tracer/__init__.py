"""tracer: streaming close-contact tracing for flights, trains and metro.

The core is pure (no I/O but the store it is handed), so every runner shares it::

    from graph.store import MemoryStore          # or RocksStore(path): the real one
    from tracer import Engine, InvalidEvent, load_settings, parse_line, route

    settings = load_settings()
    engine = Engine(MemoryStore(), settings.rules)
    max_ride_us = int(settings.rules.max_ride_hours * 3_600_000_000)
    for line in lines:
        try:
            changes = engine.process(parse_line(line, max_ride_us))
        except InvalidEvent as exc:
            ...  # a dead letter: exc.reason says why
        for change in changes:
            for destination, record in route(change):
                ...  # "contacts" or a street office's queue; record is a JSON line

Runners: ``streams.embedded.run_embedded`` (files or stdin in, RocksDB state, files out) and
``streams.kafka_worker.Worker`` (a member of a Kafka consumer group). The errors are drawn in
``tracer.errors``.

The names below are imported when first used: ``graph.store`` imports ``tracer.errors``, so
importing the engine here, eagerly, would make a cycle.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracer.alerts import Alert, Change, fold, route
    from tracer.engine import Engine
    from tracer.errors import ConfigError, InputError, InvalidEvent, OutputError, StateError, TracerError
    from tracer.events import Case, Event, Exposure, Person, Quarantine, Trip, parse_line
    from tracer.settings import RuleSettings, Settings, load_settings

_HOMES = {
    "tracer.alerts": ("Alert", "Change", "fold", "route"),
    "tracer.engine": ("Engine",),
    "tracer.errors": ("ConfigError", "InputError", "InvalidEvent", "OutputError", "StateError", "TracerError"),
    "tracer.events": ("Case", "Event", "Exposure", "Person", "Quarantine", "Trip", "parse_line"),
    "tracer.settings": ("RuleSettings", "Settings", "load_settings"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = [
    "Alert",
    "Case",
    "Change",
    "ConfigError",
    "Engine",
    "Event",
    "Exposure",
    "InputError",
    "InvalidEvent",
    "OutputError",
    "Person",
    "Quarantine",
    "RuleSettings",
    "Settings",
    "StateError",
    "TracerError",
    "Trip",
    "fold",
    "load_settings",
    "parse_line",
    "route",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'tracer' has no attribute {name!r}")
    return getattr(import_module(module), name)
