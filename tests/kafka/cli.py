"""A stand-alone ``tracer`` with only the Kafka-mode sub-commands, for tests until tracer/cli.py
wires them (``python -m tests.kafka.cli worker ...``); the same handling of errors as the real one."""

from __future__ import annotations

import argparse
import logging
import sys

from streams.kafka_cli import add_publish, add_replay, add_subscribe, add_worker
from tracer.errors import TracerError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracer")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (add_worker, add_publish, add_subscribe, add_replay):
        add(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args))
    except TracerError as exc:
        print(f"tracer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
