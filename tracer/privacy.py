"""Pseudonymised contacts stream, for sharing with researchers.

Person ids in the contacts stream become a keyed HMAC-SHA256 (stable across runs with the same
key, useless without it); street-office queues keep real ids because offices must call people.
The key comes from an environment variable or a key file, never from a command-line value,
which would show in process lists and shell histories.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
from pathlib import Path

from tracer.alerts import Alert
from tracer.errors import ConfigError

KEY_VARIABLE = "TRACER_PSEUDONYM_KEY"
PERSON_FIELDS = ("case_person_id", "contact_person_id", "via_person_id")


def add_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--pseudonymize`` and ``--key-file``, for every command that writes a contacts stream."""
    parser.add_argument(
        "--pseudonymize",
        action="store_true",
        help=f"replace person ids in {what} by a keyed HMAC (key: ${KEY_VARIABLE} or --key-file)",
    )
    parser.add_argument("--key-file", type=Path, help="file holding the pseudonymisation key")


def from_arguments(args: argparse.Namespace) -> Pseudonymizer | None:
    return Pseudonymizer(load_key(args.key_file)) if args.pseudonymize else None


def load_key(key_file: Path | None) -> bytes:
    """The pseudonymisation key: from ``key_file`` if given, else from $TRACER_PSEUDONYM_KEY."""
    if key_file is not None:
        try:
            key = key_file.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read key file {key_file}: {exc.strerror}") from exc
    else:
        key = os.environ.get(KEY_VARIABLE, "").encode()
    if len(key) < 16:
        raise ConfigError(f"--pseudonymize needs a key of at least 16 bytes in ${KEY_VARIABLE} or --key-file")
    return key


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        self._key = key
        self._seen: dict[str, str] = {}

    def person(self, person_id: str) -> str:
        found = self._seen.get(person_id)
        if found is None:
            digest = hmac.new(self._key, person_id.encode(), hashlib.sha256).hexdigest()[:20]
            found = self._seen[person_id] = "ps:" + digest
            if len(self._seen) > 1 << 18:
                self._seen.clear()
        return found

    def alert(self, alert: Alert) -> Alert:
        """A copy of ``alert`` with its person ids replaced (alert ids stay: they are already hashes)."""
        return {k: (self.person(v) if k in PERSON_FIELDS and v is not None else v) for k, v in alert.items()}
