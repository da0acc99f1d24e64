"""Pseudonymised contacts stream, for sharing with researchers.

Every field of the contacts stream that is derived from a person id becomes a keyed HMAC-SHA256:
the person ids, and the alert id, whose unkeyed hash of (case, contact, service day) would
otherwise let anyone holding a list of candidate person ids find the contact by trying them all.
Pseudonyms are stable across runs with the same key (consumers fold by ``alert_id``) and useless
without it; street-office queues keep real ids and real alert ids because offices must call people.

The key comes from an environment variable or a key file, never from a command-line value, which
would show in process lists and shell histories. It must hold real entropy (``check_key``), and a
key file without ``--pseudonymize`` is refused: it says the operator meant to pseudonymise.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import os
from pathlib import Path

from tracer.alerts import Alert
from tracer.errors import ConfigError
from tracer.settings import read_small_file

KEY_VARIABLE = "TRACER_PSEUDONYM_KEY"
PERSON_FIELDS = ("case_person_id", "contact_person_id", "via_person_id")
MIN_KEY_BYTES = 16  # non-blank bytes
MIN_KEY_SYMBOLS = 8  # distinct byte values among them
_MAX_KEY_FILE = 4096
_BLANK = frozenset(b" \t\n\r\v\f")
# Prefixes the message of a keyed alert id: ids hold no control characters, so no person id's
# message can equal an alert id's, and the two kinds of pseudonym never collide.
_ALERT_DOMAIN = b"alert\x1f"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--pseudonymize`` and ``--key-file``, for every command that writes a contacts stream."""
    parser.add_argument(
        "--pseudonymize",
        action="store_true",
        help=f"replace person ids and alert ids in {what} by a keyed HMAC (key: ${KEY_VARIABLE} or --key-file)",
    )
    parser.add_argument("--key-file", type=Path, help="file holding the pseudonymisation key (needs --pseudonymize)")


def from_arguments(args: argparse.Namespace) -> Pseudonymizer | None:
    if args.pseudonymize:
        return Pseudonymizer(load_key(args.key_file))
    if args.key_file is not None:
        raise ConfigError("--key-file without --pseudonymize: the contacts stream would keep real ids")
    if KEY_VARIABLE in os.environ:
        log.warning("$%s is set but --pseudonymize is not: the contacts stream keeps real ids", KEY_VARIABLE)
    return None


def load_key(
    key_file: Path | None, variable: str = KEY_VARIABLE, option: str = "--key-file", user: str = "--pseudonymize"
) -> bytes:
    """A secret key: from ``key_file`` if given, else from the environment ``variable`` (default
    $TRACER_PSEUDONYM_KEY); either way without surrounding whitespace (a key file's newline), and
    checked by ``check_key``. ``option`` and ``user`` only name the key's source and purpose in errors
    (the identity key of `tracer import` is loaded the same way)."""
    if key_file is not None:
        where = f"key file {key_file}"
        key = read_small_file(key_file, _MAX_KEY_FILE, "key file")
    else:
        where = f"${variable}"
        key = os.fsencode(os.environ.get(variable, ""))  # as the bytes were, even if not UTF-8
    key = key.strip()
    check_key(key, where, f"{user} needs a key of at least {{}} in ${variable} or {option}")
    return key


def check_key(key: bytes, where: str, need: str) -> None:
    """Refuse a key that a guess finds: fewer than ``MIN_KEY_BYTES`` non-blank bytes, or fewer than
    ``MIN_KEY_SYMBOLS`` distinct byte values (sixteen spaces, ``aaaaaaaaaaaaaaaa``). ``need`` says
    what was expected, ``{}`` standing for the size."""
    solid = [byte for byte in key if byte not in _BLANK]
    if len(solid) < MIN_KEY_BYTES or len(set(solid)) < MIN_KEY_SYMBOLS:
        size = f"{MIN_KEY_BYTES} non-blank bytes with {MIN_KEY_SYMBOLS} distinct ones"
        raise ConfigError(f"{need.format(size)} ({where} has {len(solid)}, {len(set(solid))} distinct)")


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        self._key = key
        self._seen: dict[str, str] = {}

    def person(self, person_id: str) -> str:
        found = self._seen.get(person_id)
        if found is None:
            found = self._seen[person_id] = "ps:" + self._mac(person_id.encode())[:20]
            if len(self._seen) > 1 << 18:
                self._seen.clear()
        return found

    def alert_id(self, alert_id: str) -> str:
        """The keyed form of an alert id: as stable as the id, so consumers still fold by it."""
        return self._mac(_ALERT_DOMAIN + alert_id.encode())[:16]

    def alert(self, alert: Alert) -> Alert:
        """A copy of ``alert`` with its person ids and its alert id keyed."""
        copy = {k: (self.person(v) if k in PERSON_FIELDS and v is not None else v) for k, v in alert.items()}
        copy["alert_id"] = self.alert_id(alert["alert_id"])
        return copy

    def _mac(self, message: bytes) -> str:
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
