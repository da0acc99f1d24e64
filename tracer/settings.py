"""One frozen settings object, loaded from ``config/defaults.toml`` and a user's TOML file.

Frozen so that nothing changes the rules mid-stream: results depend only on the input and on
this object.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tracer.errors import ConfigError

_Section = TypeVar("_Section")


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """The numbers of the close-contact rules (docs/rules.md)."""

    timezone: str = "Asia/Shanghai"
    lookback_days: int = 2
    min_overlap_seconds: float = 0
    flight_row_span: int = 3
    train_bay_span: int = 1
    retention_days: int = 21
    max_ride_hours: float = 72
    contact_isolation_hours: float = 24
    trace_secondary: bool = True

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """How the runners work; never changes what is computed."""

    commit_every: int = 5000
    max_line_bytes: int = 1 << 20
    progress_every_seconds: float = 2.0
    sync_writes: bool = False
    block_cache_mb: int = 64
    write_buffer_mb: int = 64
    max_open_files: int = 256


@dataclass(frozen=True, slots=True)
class Settings:
    rules: RuleSettings = field(default_factory=RuleSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)


def load_settings(path: str | Path | None = None) -> Settings:
    """Defaults from the packaged TOML, overridden by ``path`` when given."""
    settings = _apply(Settings(), packaged_defaults(), "defaults.toml")
    if path is not None:
        settings = _apply(settings, read_toml(path), str(path))
    _check(settings)
    return settings


def packaged_defaults() -> dict[str, Any]:
    """config/defaults.toml as shipped with the package."""
    return tomllib.loads(resources.files("config").joinpath("defaults.toml").read_text("utf-8"))


def read_toml(path: str | Path) -> dict[str, Any]:
    """A user's config file; ConfigError (one line) when it cannot be read or parsed."""
    try:
        return tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc


OTHER_SECTIONS = ("kafka",)  # validated by their own loaders (streams/kafka_settings.py)


def _apply(settings: Settings, data: dict[str, Any], origin: str) -> Settings:
    sections: dict[str, Any] = {"rules": settings.rules, "runtime": settings.runtime}
    for name, values in data.items():
        if name in OTHER_SECTIONS:
            continue
        if name not in sections:
            raise ConfigError(f"{origin}: unknown section [{name}] (expected [rules], [runtime] or [kafka])")
        sections[name] = apply_section(sections[name], values, origin, name)
    return Settings(rules=sections["rules"], runtime=sections["runtime"])


def apply_section(current: _Section, values: Any, origin: str, name: str) -> _Section:
    """``current`` with one TOML table applied: unknown keys and wrong types are errors, not ignored."""
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: [{name}] must be a table")
    known = {f.name for f in fields(current)}  # type: ignore[arg-type]
    converted = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{origin}: unknown key {name}.{key}")
        expected = type(getattr(current, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{origin}: {name}.{key} must be {expected.__name__}, got {value!r}")
        converted[key] = value
    return replace(current, **converted)  # type: ignore[type-var]


def _check(settings: Settings) -> None:
    rules, runtime = settings.rules, settings.runtime
    try:
        ZoneInfo(rules.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"rules.timezone: unknown time zone {rules.timezone!r}") from exc
    for name in ("lookback_days", "flight_row_span", "train_bay_span", "retention_days"):
        if getattr(rules, name) < 0:
            raise ConfigError(f"rules.{name} must not be negative")
    if rules.min_overlap_seconds < 0 or rules.max_ride_hours <= 0:
        raise ConfigError("rules.min_overlap_seconds must be >= 0 and rules.max_ride_hours > 0")
    if runtime.commit_every < 1 or runtime.max_line_bytes < 64:
        raise ConfigError("runtime.commit_every must be >= 1 and runtime.max_line_bytes >= 64")
    if runtime.max_open_files < 4:
        raise ConfigError("runtime.max_open_files must be >= 4")
