"""Crash safety: SIGKILL a real `tracer run` at random moments; every restart must converge.

After each kill the same command runs again on the same --state and --out. When a run finally
completes, every output file must be byte-identical to an uninterrupted run: nothing lost,
nothing torn, nothing duplicated. TRACER_KILLS sets the number of kills (default 8); a run that
completes before its kill is checked, and the next starts from nothing, so every kill happens.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracer.simulate import generate

KILLS = int(os.environ.get("TRACER_KILLS", "8"))


def tracer_run(events: Path, out: Path, state: Path, config: Path, workers: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "tracer.cli", "run", str(events), "--out", str(out),
               "--state", str(state), "--config", str(config), "--quiet", "--workers", str(workers)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.jsonl"))}


# Many checkpoints to land between; then small engine batches with retention purges (which commit
# inside a batch) on the way: a resumed run must cut the same batches, or its changes would differ.
CONFIGS = {
    "default-batches": "[runtime]\ncommit_every = 200\n",
    "purging-small-batches": "[rules]\nretention_days = 1\n\n[runtime]\ncommit_every = 90\nbatch_events = 37\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_sigkill_at_random_points_loses_nothing(tmp_path, name, workers):
    """With 2 workers, a kill also lands between a worker's commit and the coordinator's, and in a
    retention purge in the middle of a worker's epoch: the outputs are those of 2 workers unkilled."""
    generate(persons=20000, days=3 if "purging" in name else 2, cases=20, seed=5, out_dir=tmp_path / "city",
             truth=False)
    events = tmp_path / "city" / "events.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(CONFIGS[name])

    reference = tmp_path / "reference"
    started = time.perf_counter()
    assert tracer_run(events, reference, tmp_path / "ref-state", config, workers).wait() == 0
    full_run = time.perf_counter() - started
    expected = files_of(reference)
    assert expected["contacts.jsonl"], "the generated city must produce alerts"

    out, state = tmp_path / "out", tmp_path / "state"
    rng = random.Random(11)
    kills = 0
    while kills < KILLS:
        process = tracer_run(events, out, state, config, workers)
        time.sleep(rng.uniform(0.3, max(0.4, full_run)))  # past start-up, inside the run
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            continue
        # It finished (resumed runs have less left to do) before the kill: check it, then start
        # again from nothing, so that every kill asked for happens.
        assert process.returncode == 0, process.stderr.read().decode() if process.stderr else process.returncode
        assert files_of(out) == expected
        shutil.rmtree(out)
        shutil.rmtree(state)
    process = tracer_run(events, out, state, config, workers)
    assert process.wait() == 0, process.stderr.read().decode() if process.stderr else process.returncode
    assert files_of(out) == expected
