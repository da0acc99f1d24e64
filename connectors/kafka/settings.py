"""Kafka-mode settings: topic names, partition counts, client tuning; the ``[kafka]`` TOML section.

Kept apart from ``tracer.settings`` (rules and runtime) because nothing here changes *what* is
computed, only how the work is spread and delivered; and so that the embedded runner does not
depend on Kafka. The section is read from ``config/defaults.toml`` (when it holds one) and then from
the user's ``--config`` file, with the same strictness as the main loader: unknown keys and wrong
types are errors, not silently ignored.

The defaults are for a real Kafka cluster. Tests override the group timings (the Tansu broker
joins a group in about half the session timeout) in their own config file, never here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from graph.store import StoreOptions
from tracer.errors import ConfigError
from tracer.settings import Range, RuntimeSettings, Settings, apply_section, load_settings, packaged_defaults, read_toml

SECTION = "kafka"
_HOST_PORT = re.compile(r"[A-Za-z0-9_.\-]+:[0-9]{1,5}|\[[0-9A-Fa-f:]+\]:[0-9]{1,5}")
_TOPIC = re.compile(r"[A-Za-z0-9._\-]{1,200}")


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """How tracer uses a Kafka cluster. See docs/kafka.md for what a production cluster needs."""

    broker: str = "kafka://127.0.0.1:9092"
    client_id: str = "tracer"
    group_id: str = "tracer-workers"
    # topics (public contract: docs/kafka.md)
    events_topic: str = "events"
    registry_topic: str = "registry"
    contacts_topic: str = "contacts"
    queue_topic_prefix: str = "alerts."
    dead_letter_topic: str = "dead-letter"
    status_topic: str = "status"
    private_contacts_topic: str = "contacts.private"
    events_partitions: int = 12
    registry_partitions: int = 1
    contacts_partitions: int = 6
    queue_partitions: int = 1
    dead_letter_partitions: int = 1
    status_partitions: int = 6
    replication_factor: int = 1
    min_insync_replicas: int = 1
    events_retention_days: int = 35
    declare_queues: bool = False
    # worker
    batch_max_records: int = 2000
    fetch_max_wait_ms: int = 500
    session_timeout_ms: int = 45000
    heartbeat_interval_ms: int = 3000
    max_poll_interval_ms: int = 300000
    stats_every_seconds: float = 10.0
    partition_cache_mb: int = 16
    partition_write_buffer_mb: int = 16
    # producers
    producer_linger_ms: int = 5
    producer_max_batch_bytes: int = 1 << 20
    request_timeout_ms: int = 30000

    @property
    def bootstrap(self) -> str:
        """``host:port[,host:port]`` for the clients, from the ``kafka://`` URL."""
        return bootstrap_servers(self.broker)

    def partition_store_options(self, runtime: RuntimeSettings) -> StoreOptions:
        """The RocksDB sizes of one partition's store: several share a worker, so each gets the
        ``[kafka]`` partition budget, not the embedded runner's whole-process ``[runtime]`` one."""
        return StoreOptions(runtime.sync_writes, self.partition_cache_mb, self.partition_write_buffer_mb)

    def queue_topic(self, queue: str) -> str:
        """The street-office topic of a queue name (a subdistrict code or ``unassigned``)."""
        return self.queue_topic_prefix + queue


# Every number of the section (the mechanism and the rules/runtime table: tracer/settings.py).
_MS_HOUR = 3_600_000
RANGES: Mapping[str, Range] = {
    f"{SECTION}.{name}": allowed
    for name, allowed in {
        "events_partitions": Range(1, 10_000),  # Kafka itself advises well under 10,000 per topic
        "registry_partitions": Range(1, 10_000),
        "contacts_partitions": Range(1, 10_000),
        "queue_partitions": Range(1, 1000),
        "dead_letter_partitions": Range(1, 1000),
        "status_partitions": Range(1, 10_000),
        "replication_factor": Range(1, 32),
        "min_insync_replicas": Range(1, 32),
        "events_retention_days": Range(1, 3660),  # ten years
        "batch_max_records": Range(1, 1_000_000),
        "fetch_max_wait_ms": Range(0, 60_000),
        "session_timeout_ms": Range(1000, _MS_HOUR),
        "heartbeat_interval_ms": Range(100, _MS_HOUR // 3),
        "max_poll_interval_ms": Range(1000, 24 * _MS_HOUR),
        "stats_every_seconds": Range(0, 3600),  # 0: no progress line
        "partition_cache_mb": Range(1, 65_536),
        "partition_write_buffer_mb": Range(1, 4096),
        "producer_linger_ms": Range(0, 60_000),
        "producer_max_batch_bytes": Range(1024, 64 << 20),
        "request_timeout_ms": Range(1000, _MS_HOUR),
    }.items()
}


def bootstrap_servers(url: str) -> str:
    """``kafka://h1:9092,h2:9092`` (or bare ``h1:9092``) -> ``h1:9092,h2:9092``; ConfigError if malformed."""
    text = url.strip()
    if text.startswith("kafka://"):
        text = text[len("kafka://"):]
    text = text.rstrip("/")
    hosts = [part.strip() for part in text.split(",")]
    if not hosts or not all(_HOST_PORT.fullmatch(h) and 0 < int(h.rsplit(":", 1)[1]) < 65536 for h in hosts):
        raise ConfigError(f"broker must look like kafka://HOST:PORT[,HOST:PORT], got {url!r}")
    return ",".join(hosts)


def load_kafka_settings(path: str | Path | None = None, broker: str | None = None) -> KafkaSettings:
    """Defaults, then ``[kafka]`` of defaults.toml (if present), then of ``path``, then ``broker``."""
    settings = _apply(KafkaSettings(), packaged_defaults().get(SECTION, {}), "defaults.toml")
    if path is not None:
        settings = _apply(settings, read_toml(path).get(SECTION, {}), str(path))
    if broker is not None:
        settings = replace(settings, broker=broker)
    _check(settings)
    return settings


def load_all(path: str | Path | None = None, broker: str | None = None) -> tuple[Settings, KafkaSettings]:
    """Rule/runtime settings and Kafka settings from one user file."""
    return load_settings(path), load_kafka_settings(path, broker)


def _apply(settings: KafkaSettings, values: Any, origin: str) -> KafkaSettings:
    return apply_section(settings, values, origin, SECTION, RANGES)


def _check(settings: KafkaSettings) -> None:
    bootstrap_servers(settings.broker)
    for name in ("events_topic", "registry_topic", "contacts_topic", "dead_letter_topic", "status_topic",
                 "private_contacts_topic"):
        if not _TOPIC.fullmatch(getattr(settings, name)):
            raise ConfigError(f"{SECTION}.{name} is not a valid topic name")
    if not _TOPIC.fullmatch(settings.queue_topic_prefix + "310101002"):
        raise ConfigError(f"{SECTION}.queue_topic_prefix makes invalid topic names")
    if settings.min_insync_replicas > settings.replication_factor:
        raise ConfigError(f"{SECTION}.min_insync_replicas must not exceed replication_factor")
    if settings.heartbeat_interval_ms * 3 > settings.session_timeout_ms:
        raise ConfigError(f"{SECTION}.heartbeat_interval_ms must be at most a third of session_timeout_ms")
