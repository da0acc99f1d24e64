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
``streams.kafka.worker.Worker`` (a member of a Kafka consumer group). The errors are drawn in
``tracer.errors``.
"""

from tracer.alerts import Alert, Change, fold, route
from tracer.engine import Engine
from tracer.errors import ConfigError, InputError, InvalidEvent, OutputError, StateError, TracerError
from tracer.events import Case, Event, Exposure, Followup, Person, Trip, parse_line
from tracer.settings import RuleSettings, Settings, load_settings

__all__ = [
    "Alert",
    "Case",
    "Change",
    "ConfigError",
    "Engine",
    "Event",
    "Exposure",
    "Followup",
    "InputError",
    "InvalidEvent",
    "OutputError",
    "Person",
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
