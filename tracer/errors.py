"""The exceptions tracer raises.

TracerError                 anything tracer itself reports (the CLI prints it, exits non-zero)
├── ConfigError             a settings file or value is wrong
├── InputError              an input file cannot be read (bad lines are dead letters, not errors)
├── StateError              the state does not fit these inputs or this output folder
└── OutputError             an output cannot be written (disk full, read-only folder)

StoreError                  (graph.store, the bottom layer, which imports nothing above it) the
                            RocksDB state cannot be opened or written; the CLI reports it the same way

InvalidEvent                one input line is rejected; carries the reason. Never escapes the
                            runners: it becomes a dead letter.
"""

from __future__ import annotations


class TracerError(Exception):
    """Base of the errors that stop a command with a clear message."""


class ConfigError(TracerError):
    pass


class InputError(TracerError):
    pass


class StateError(TracerError):
    pass


class OutputError(TracerError):
    pass


class InvalidEvent(ValueError):
    """An input record that cannot be traced; ``reason`` says why, for the dead letter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
