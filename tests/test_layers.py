"""The packages import one way, bottom up; checked on every module's source (no import runs).

    tracer.cli     the composition root: the commands; nothing imports it
    benchmarks     measurements over everything below (they may use the tests' broker harness)
    streams        the runners: embedded, Kafka worker and partitions; the web console over their state
    connectors     files, importers, Kafka clients
    tracer         the domain: events, rules, sources, alerts, engine, views, analysis
    graph          the co-travel store: keys and the store backends

A module may import its own layer and the layers below it. A layer is the longest matching
prefix, so ``tracer.cli`` is above ``streams`` while the rest of ``tracer`` is below it.
import-linter was tried first: its layers contract refuses a layer inside another
("Layers cannot contain other layers: 'tracer' contains 'tracer.cli'").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("tracer.cli", "benchmarks", "streams", "connectors", "tracer", "graph")  # top first
PACKAGES = ("graph", "tracer", "connectors", "streams", "benchmarks")


def layer_of(module: str) -> int | None:
    """Index of ``module``'s layer in LAYERS (0 is the top), or None outside the project."""
    matches = [i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + ".")]
    return min(matches, key=lambda i: -len(LAYERS[i])) if matches else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file, at any depth (local imports too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:  # ``from tracer import cli`` imports a module by name
                name = f"{node.module}.{alias.name}"
                found.append((node.lineno, name if _is_module(name) else node.module))
    return found


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_layer_of_takes_the_longest_prefix() -> None:
    assert layer_of("tracer.cli.kafka") == 0
    assert layer_of("tracer.engine") == LAYERS.index("tracer")
    assert layer_of("graph.store") == LAYERS.index("graph")
    assert layer_of("tracerx") is None and layer_of("orjson") is None


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_run_downward(path: Path) -> None:
    here = layer_of(module_name(path))
    assert here is not None
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {target} ({LAYERS[layer_of(target)]} is above {LAYERS[here]})"
        for line, target in imports_of(path)
        if layer_of(target) is not None and layer_of(target) < here  # type: ignore[operator]
    ]
    assert not upward, "\n".join(upward)
