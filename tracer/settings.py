"""One frozen settings object, loaded from ``config/defaults.toml`` and a user's TOML file.

Frozen so that nothing changes the rules mid-stream: results depend only on the input and on
this object. Every number is checked against the range declared for it in ``RANGES`` (next to the
dataclasses), so a careless value is a one-line ``ConfigError``, never a traceback far away (a
date overflow in the engine, a RocksDB error).
"""

from __future__ import annotations

import math
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from graph.store import StoreOptions
from tracer.errors import ConfigError

_Section = TypeVar("_Section")
_MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """The numbers of the close-contact rules (docs/rules.md)."""

    timezone: str = "Asia/Shanghai"
    lookback_days: int = 2
    min_overlap_seconds: float = 0.0
    flight_row_span: int = 3
    train_bay_span: int = 1
    retention_days: int = 21
    exposure_retention_days: int = 60  # published exposures: at least retention_days (``_check``)
    max_ride_hours: float = 72.0
    contact_isolation_hours: float = 24.0
    trace_secondary: bool = True
    event_time_quorum: int = 100

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """How the runners work; never changes what is computed."""

    commit_every: int = 5000
    batch_events: int = 1000
    max_line_bytes: int = _MIB
    progress_every_seconds: float = 2.0
    sync_writes: bool = False
    block_cache_mb: int = 64
    write_buffer_mb: int = 64
    max_open_files: int = 256
    plain_lines: bool = True  # the fast lane for plain lines (tracer/plainlines.py); false: the full parser only

    # -- the web console (tracer serve, docs/console.md) --
    console_nice: int = 0  # added to tracer serve's nice value: the run beside it gets the cores first

    def store_options(self) -> StoreOptions:
        """The RocksDB sizes of the embedded runner's one store."""
        return StoreOptions(self.sync_writes, self.block_cache_mb, self.write_buffer_mb)


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """Where residents live: the list of real subdistrict codes (tracer/registry.py)."""

    subdistricts: str = ""  # a CSV with a ``code`` column; "" is the shipped Shanghai list


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    """How ``tracer run`` reads a line written in a non-canonical form (tracer/intake.py)."""

    rewrite_noncanonical: bool = True  # rewrite it (a warning says how); False: reject it


COLORS = ("green", "yellow", "red")  # health status colours, mildest first (docs/rules.md)


@dataclass(frozen=True, slots=True)
class FollowupHours:
    """How long an office has to reach a resident after their first alert, by the row's level."""

    close: float = 24.0
    secondary: float = 48.0
    general: float = 72.0


@dataclass(frozen=True, slots=True)
class StatusSettings:
    """Health status (随申码) and the call list's deadlines (docs/rules.md, "Follow-up and health status")."""

    close_color: str = "red"
    close_days: int = 14
    secondary_color: str = "yellow"
    secondary_days: int = 14
    general_color: str = "yellow"
    general_days: int = 14
    followup_hours: FollowupHours = field(default_factory=FollowupHours)


class Range(NamedTuple):
    """The values a number may take: ``low..high``, or ``(low, high]`` when ``low_open``."""

    low: int
    high: int
    low_open: bool = False

    def __contains__(self, value: object) -> bool:
        assert isinstance(value, int | float)
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high

    def describe(self) -> str:
        if self.low_open:
            return f"more than {self.low} and at most {self.high}"
        return f"between {self.low} and {self.high}"


# Every number of every section (the Kafka section has its own table in connectors/kafka/settings.py).
# The bounds are sanity limits, far wider than any real use, that keep the arithmetic and the
# resources sane; a value outside them is a typo or a misunderstanding.
RANGES: Mapping[str, Range] = {
    "rules.lookback_days": Range(0, 30),  # the national editions used 2 to 4 days
    "rules.min_overlap_seconds": Range(0, 86_400),  # a day: longer would rule out every contact
    "rules.flight_row_span": Range(0, 100),  # more rows than any cabin has
    "rules.train_bay_span": Range(0, 20),  # more bays than a carriage has
    "rules.retention_days": Range(1, 366),  # a year of state; 0 would forget each day as it starts
    "rules.exposure_retention_days": Range(1, 366),  # published exposures, for the lookup
    "rules.max_ride_hours": Range(0, 168, low_open=True),  # a week: the longest train rides
    "rules.event_time_quorum": Range(1, 100_000),  # trips that must agree before event time moves
    "rules.contact_isolation_hours": Range(0, 720),  # 30 days, past any quarantine period
    "runtime.commit_every": Range(1, 1_000_000),  # a batch of a million events is already ~1 GB
    "runtime.batch_events": Range(1, 100_000),  # events the engine applies as one step
    "runtime.max_line_bytes": Range(64, 64 * _MIB),  # the smallest event is ~60 bytes
    "runtime.progress_every_seconds": Range(0, 3600),  # 0: no progress line
    "runtime.block_cache_mb": Range(1, 65_536),  # 64 GiB
    "runtime.write_buffer_mb": Range(1, 4096),  # RocksDB caps a memtable below 4 GiB
    "runtime.max_open_files": Range(4, 65_536),  # the pool of open output files (queues)
    "runtime.console_nice": Range(0, 19),  # an unprivileged process can only lower its priority
    "status.close_days": Range(0, 366),  # observation after the last exposure; 0: none
    "status.secondary_days": Range(0, 366),
    "status.general_days": Range(0, 366),
    "status.followup_hours.close": Range(0, 8784),  # a year
    "status.followup_hours.secondary": Range(0, 8784),
    "status.followup_hours.general": Range(0, 8784),
}


@dataclass(frozen=True, slots=True)
class Settings:
    rules: RuleSettings = field(default_factory=RuleSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    status: StatusSettings = field(default_factory=StatusSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)


def load_settings(path: str | Path | None = None) -> Settings:
    """Defaults from the packaged TOML, overridden by ``path`` when given.

    A relative ``registry.subdistricts`` path in ``path`` is relative to that file's folder, so a
    config file and its city's list travel together whatever the working directory.
    """
    settings = _apply(Settings(), packaged_defaults(), "defaults.toml")
    if path is not None:
        settings = _apply(settings, read_toml(path), str(path))
        listed = settings.registry.subdistricts
        if listed and not Path(listed).is_absolute():
            settings = replace(settings, registry=RegistrySettings(str(Path(path).parent / listed)))
    _check(settings)
    return settings


def packaged_defaults() -> dict[str, Any]:
    """config/defaults.toml as shipped with the package."""
    return tomllib.loads(resources.files("config").joinpath("defaults.toml").read_text("utf-8"))


def read_small_file(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of an operator's small file (a config, a subdistrict list, a key file): a regular
    file of at most ``limit`` bytes. A FIFO, a device or ``/dev/stdin`` would hang the run or eat
    its input, ``/dev/zero`` would fill the memory: each is a one-line ConfigError instead."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what}: cannot read {path}: not a regular file")
        if info.st_size > limit:
            raise ConfigError(f"{what}: cannot read {path}: larger than {limit:,} bytes")
        with os.fdopen(os.dup(fd), "rb") as file:
            return file.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def read_toml(path: str | Path) -> dict[str, Any]:
    """A user's config file; ConfigError (one line) when it cannot be read or parsed."""
    data = read_small_file(path, _MIB, "config")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc


OTHER_SECTIONS = ("kafka",)  # validated by their own loaders (connectors/kafka/settings.py)


def _apply(settings: Settings, data: dict[str, Any], origin: str) -> Settings:
    sections: dict[str, Any] = {f.name: getattr(settings, f.name) for f in fields(settings)}
    for name, values in data.items():
        if name in OTHER_SECTIONS:
            continue
        if name not in sections:
            expected = ", ".join(f"[{known}]" for known in [*sections, *OTHER_SECTIONS])
            raise ConfigError(f"{origin}: unknown section [{name}] (expected one of {expected})")
        sections[name] = apply_section(sections[name], values, origin, name, RANGES)
    return Settings(**sections)


def apply_section(current: _Section, values: Any, origin: str, name: str, ranges: Mapping[str, Range]) -> _Section:
    """``current`` with one TOML table applied: unknown keys, wrong types and numbers outside
    ``ranges`` (keyed ``section.key``) are errors, not ignored."""
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: [{name}] must be a table")
    types = field_types(type(current))
    converted = {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"{origin}: unknown key {name}.{key}")
        if is_dataclass(types[key]):  # a table inside the section: [status] followup_hours = {close = 24}
            converted[key] = apply_section(getattr(current, key), value, origin, f"{name}.{key}", ranges)
            continue
        converted[key] = _value(value, types[key], ranges.get(f"{name}.{key}"), f"{origin}: {name}.{key}")
    return replace(current, **converted)  # type: ignore[type-var]


@cache
def field_types(section: type) -> dict[str, type]:
    """Field name -> declared type (the annotation, not the default's type: ``72`` is a float field)."""
    hints = get_type_hints(section)
    return {f.name: hints[f.name] for f in fields(section)}


def _value(value: Any, expected: type, allowed: Range | None, label: str) -> Any:
    """``value`` checked against its field's type and range. An int field takes TOML integers only
    (``3.0`` days is refused like ``3.5``: no silent truncation); a float field also takes integers."""
    if isinstance(value, bool) != (expected is bool):
        raise ConfigError(f"{label} must be {expected.__name__}, got {value!r}")
    converted = float(value) if expected is float and isinstance(value, int) else value
    if not isinstance(converted, expected):
        raise ConfigError(f"{label} must be {expected.__name__}, got {value!r}")
    if isinstance(converted, float) and not math.isfinite(converted):
        raise ConfigError(f"{label} must be a finite number, got {value!r}")
    if allowed is not None and converted not in allowed:
        raise ConfigError(f"{label} must be {allowed.describe()}, got {value!r}")
    return converted


_HOST_ZONES = frozenset(("localtime", "posixrules", "Factory"))  # files in tzdata that are not a place


def _check(settings: Settings) -> None:
    rules = settings.rules
    if rules.exposure_retention_days < rules.retention_days:
        raise ConfigError(
            f"rules.exposure_retention_days ({rules.exposure_retention_days}) must be at least rules.retention_days "
            f"({rules.retention_days}): a published exposure is kept as long as the trips it is traced against"
        )
    status = settings.status
    for name in ("close_color", "secondary_color", "general_color"):
        if getattr(status, name) not in COLORS:
            raise ConfigError(f"status.{name} must be one of {', '.join(COLORS)}, got {getattr(status, name)!r}")
    timezone = settings.rules.timezone
    if timezone in _HOST_ZONES:
        raise ConfigError(f"rules.timezone: {timezone!r} depends on the machine; name the zone (e.g. Asia/Shanghai)")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ConfigError(f"rules.timezone: unknown time zone {timezone!r}") from exc
