"""Issue 12 item 6 on the broker: ``tracer publish`` reports a person of an unknown subdistrict once,
as a warning dead letter, and still publishes it (the partitions send their alerts to ``unassigned``:
tests/test_harden_subdistricts.py); a code in other digits is a dead letter, not published."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from connectors.kafka.publish import publish
from connectors.kafka.settings import KafkaSettings
from tests.builders import lines, person
from tests.kafka.test_publish import read_topic
from tracer.settings import load_settings

pytestmark = pytest.mark.broker


def test_publish_warns_once_of_an_unknown_code_and_refuses_other_digits(kafka: KafkaSettings,
                                                                       tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    fullwidth = "３１０１０１００２"
    events.write_bytes(lines([person("P1", "310101002"), person("P2", "310199999"), person("P3", fullwidth)]))
    summary = publish([str(events)], load_settings(), kafka)
    assert (summary.events["person"], summary.dead_letters, summary.warnings) == (2, 1, 1)
    letters = [orjson.loads(r.value) for found in read_topic(kafka, kafka.dead_letter_topic).values() for r in found]
    assert sorted((letter["line"], letter.get("severity")) for letter in letters) == [(2, "warning"), (3, None)]
    published = {r.value for found in read_topic(kafka, kafka.registry_topic).values() for r in found}
    assert {orjson.loads(value)["person_id"] for value in published} == {"P1", "P2"}
