"""The console in Kafka mode, on the broker: ``tracer worker`` and ``tracer views`` as processes,
the city of tests/console.py published, and ``tracer serve --broker`` over the views' state.

An office page's rows fill from the published events; a new close contact reaches its own office's
page over server-sent events and no other's; an action is one followup record in every events
partition (a double click too, and across a restart of the console while the view process is down)
and, once the view process has it, the row and the KPIs show it; an office reads and acts on
nothing of another office; the cases pages and the lookup answer 503 with what they need, and read
a ``tracer replay`` state when given one. No timing is asserted: every wait polls with a timeout.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka.publish import publish
from connectors.kafka.routing import SEQ_HEADER
from connectors.kafka.settings import KafkaSettings
from streams.console.data import ConsoleData
from streams.console.kafka import NEEDS_REPLAY, KafkaData
from tests.console import (
    CASE_ID,
    CONFIG,
    A,
    B,
    World,
    act,
    check_live_updates,
    live_pages,
    make_world,
    served,
    wait_for,
)
from tests.kafka.cluster import WorkerProcess, high_watermarks, wait_caught_up, wait_views_caught_up
from tests.kafka.conftest import ROOT, fresh_settings, tracer_command
from tests.kafka.harness import write_config
from tests.test_console_access import LOOKUP, OTHER_OFFICE, ROLES, TABLE, expected, send
from tracer.cli import main
from tracer.settings import Settings, load_settings

pytestmark = pytest.mark.broker
NEED_REPLAY = {"/cases", "/cases/{case_id:path}", "/cases/{case_id:path}/picture", "/lookup"}


@dataclass
class Deployment:
    """The broker's topics, a worker and the view process, and the console's files."""

    world: World
    kafka: KafkaSettings
    worker: WorkerProcess
    views: WorkerProcess

    @property
    def settings(self) -> Settings:
        return load_settings(self.world.config)

    @property
    def state(self) -> Path:
        return self.views.state

    def publish(self, data: bytes) -> float:
        """Publish input lines; returns a time before any change they make."""
        path = self.world.root / f"published-{time.monotonic_ns()}.jsonl"
        path.write_bytes(data)
        moment = time.monotonic()
        publish([str(path)], self.settings, self.kafka)
        return moment

    def caught_up(self) -> None:
        wait_caught_up(self.kafka, [self.worker])
        wait_views_caught_up(self.kafka, self.views)

    def data(self, replay: Path | None = None) -> Callable[[Settings, Path], ConsoleData]:
        """How ``tests.console.served`` makes the console's data: Kafka mode's, over the views."""
        return lambda settings, scratch: KafkaData(self.state, settings, self.kafka, scratch, replay)


@pytest.fixture(scope="module")
def deployment(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("kafka-console")
    world = make_world(root, traced=False)
    kafka = fresh_settings(broker)
    world.config.write_text(write_config(kafka, root / "kafka.toml").read_text() + CONFIG)
    found = Deployment(world, kafka, WorkerProcess("worker", world.config, root / "worker", root).start(),
                       WorkerProcess("views", world.config, root / "views", root, "views").start())
    try:
        found.publish(world.feed.read_bytes())
        found.caught_up()
        yield found
    finally:
        found.views.stop()
        found.worker.stop()


def test_an_office_page_fills_hears_its_own_office_and_its_action_is_one_record(deployment: Deployment) -> None:
    world, kafka = deployment.world, deployment.kafka
    serve = ["serve", "--broker", kafka.broker, "--state", str(deployment.state), "--users", str(world.users),
             "--config", str(world.config), "--port", "0"]
    log = world.root / "serve.err"
    with live_pages(serve, log) as live:
        rows = live.office_a.get(f"/office/{A}/rows").json()
        assert {row["person_id"] for row in rows["rows"]} == {"PA1", "PA2"} and rows["now"]
        check_live_updates(deployment.publish, live)
        metrics = live.office_a.get("/metrics").text
    assert live.console.returncode == 0, log.read_text()
    assert "tracer_console_followups_appended_total 1" in metrics
    assert "tracer_console_followups_repeated_total 1" in metrics
    published = followups(kafka, "PA1", "reached")
    assert sorted(published) == list(range(kafka.events_partitions))  # one record in each partition
    assert len({(orjson.dumps(record), seq) for record, seq in published.values()}) == 1
    record = next(iter(published.values()))[0]
    assert record == {"type": "followup", "person_id": "PA1", "outcome": "reached", "at": "2020-01-22T13:00:00+08:00",
                      "by": A}
    assert "POST /office/{code}/followups 200" in log.read_text() and "PA1" not in log.read_text()


def test_an_action_is_one_record_across_a_console_restart_with_the_view_process_down(
        deployment: Deployment) -> None:
    """Published while the view process is down, the action is not in the views when the console
    starts again: it is read back from the events topic, and the same form sent again is refused."""
    assert deployment.views.stop() == 0
    quarantined = {"outcome": "quarantined", "at": "2020-01-22T14:00"}
    with served(deployment.world, data=deployment.data()) as console, console.client("office-a") as client:
        assert act(client, A, "PA2", **quarantined).json() == {"written": True}
    with served(deployment.world, data=deployment.data()) as console, console.client("office-a") as client:
        assert act(client, A, "PA2", **quarantined).json() == {"written": False}
        deployment.views = WorkerProcess("views-again", deployment.world.config, deployment.state,
                                         deployment.world.root, "views").start()

        def shown() -> bool:
            listed = client.get(f"/office/{A}/rows").json()["rows"]
            return any(row["person_id"] == "PA2" and (row["followup"] or {}).get("outcome") == "quarantined"
                       for row in listed)

        wait_for(shown, "PA2's follow-up in office A's rows")
    with served(deployment.world, data=deployment.data()) as console, console.client("office-a") as client:
        assert act(client, A, "PA2", **quarantined).json() == {"written": False}  # the views hold it
    assert sorted(followups(deployment.kafka, "PA2", "quarantined")) == list(range(deployment.kafka.events_partitions))


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role or "anonymous")
def test_every_endpoint_for_every_role(deployment: Deployment, role: str | None) -> None:
    """As in embedded mode, but the pages that need the engine's families: 503, saying so."""
    with served(deployment.world, data=deployment.data()) as console, console.client(role) as client:
        if role == "epidemiologist":
            assert client.get("/cases").text == NEEDS_REPLAY
        found = [(url, send(client, method, url), _kafka_mode(expected(rule, role), template))
                 for method, url, template, rule in TABLE]  # the last logs out
    assert [row for row in found if row[1] != row[2]] == []


def test_an_office_reads_and_acts_on_nothing_of_another_office(deployment: Deployment) -> None:
    with served(deployment.world, data=deployment.data()) as console, console.client("office-a") as client:
        assert [url for url in OTHER_OFFICE if send(client, "GET", url) != 403] == []
        assert act(client, A, "PB1").status_code == 403 and act(client, B, "PB1").status_code == 403
        rows = client.get(f"/office/{A}/rows", params={"code": B, "office": B}).json()["rows"]
        assert "PB1" not in {row["person_id"] for row in rows}
    assert followups(deployment.kafka, "PB1", "reached") == {}


def test_the_cases_pages_and_the_lookup_read_a_replayed_state(deployment: Deployment) -> None:
    root = deployment.world.root
    done = subprocess.run(tracer_command("replay", "--config", str(deployment.world.config), "--out",
                                         str(root / "replay-out"), "--state", str(root / "replay"), "--quiet"),
                          cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    with served(deployment.world, data=deployment.data(root / "replay")) as console:
        with console.client("epidemiologist") as client:
            for url in ("/cases", f"/cases/{CASE_ID}", f"/cases/{CASE_ID}/picture"):
                assert client.get(url).status_code == 200, url
            assert "PA1" in client.get(f"/cases/{CASE_ID}").text
        with console.client() as client:
            assert client.get(LOOKUP).status_code == 200


def test_serve_refuses_mixed_modes_and_a_state_that_is_not_the_views(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(tmp_path)
    common = ["serve", "--state", str(world.state), "--users", str(world.users)]
    broker = ["--broker", "kafka://127.0.0.1:9"]  # never reached: each is refused before
    for args, said in ((["--out", str(world.out), *broker], "--out and --followups are embedded mode's"),
                       (["--followups", str(world.followups), *broker], "--out and --followups are embedded"),
                       (["--out", str(world.out)], "needs --out and --followups"),
                       (["--out", str(world.out), "--followups", str(world.followups), "--replay-state",
                         str(world.state)], "--replay-state is for Kafka mode"),
                       (broker, "is the state of a run or a partition")):
        assert main([*common, *args]) == 2
        assert said in capsys.readouterr().err, args


def _kafka_mode(status: int, template: str) -> int:
    return 503 if status == 200 and template in NEED_REPLAY else status


def followups(kafka: KafkaSettings, person: str, outcome: str) -> dict[int, tuple[dict[str, Any], bytes]]:
    """The followup records of ``person`` with ``outcome`` in the events topic, by partition, with
    their ``tracer-seq``; a partition holding two fails."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        ends = high_watermarks(kafka, consumer, {})
        tps = [TopicPartition(kafka.events_topic, partition) for partition in ends]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        found: dict[int, tuple[dict[str, Any], bytes]] = {}
        while any(consumer.position(tp) < ends[tp.partition] for tp in tps):
            for tp, records in consumer.poll(timeout_ms=300).items():
                for record in records:
                    value = orjson.loads(record.value)
                    if value.get("type") == "followup" and (value["person_id"], value["outcome"]) == (person, outcome):
                        assert tp.partition not in found, f"two follow-ups of {person} in partition {tp.partition}"
                        found[tp.partition] = (value, dict(record.headers)[SEQ_HEADER])
        return found
    finally:
        consumer.close()
