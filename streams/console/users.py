"""The console's accounts: the users file (USERS.toml) and its password hashes.

    [users.wang]
    role = "office"                # office, supervisor or epidemiologist
    subdistrict = "310101002"      # offices only: the one office whose residents it reads and acts on
    password = "scrypt$32768$8$1$<salt>$<hash>"

A password is kept as scrypt (``hashlib.scrypt``, RFC 7914) of a random 16-byte salt, with its cost
parameters in the hash, so raising them later leaves old hashes readable. ``tracer users add``
appends an account (the file is replaced whole, never half written, and created readable by its
owner only); the console reads the file again when it changes, so an account added while it runs
can log in, and one removed is logged out at its next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tracer.alerts import UNASSIGNED
from tracer.errors import ConfigError

ROLES = ("office", "supervisor", "epidemiologist")
OFFICE, SUPERVISOR, EPIDEMIOLOGIST = ROLES
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a bare TOML key: written into the file as it is
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
# 32 MiB and about 0.1 s a hash on this machine: the cost RFC 7914 gives interactive logins, doubled.
_N, _R, _P = 2**15, 8, 1
_MAX_N = 2**20  # a hash from the file asks for at most 1 GiB: a planted one cannot exhaust memory
_HASHING = threading.BoundedSemaphore(2)  # at most two hashes at once (32 MiB each), whoever asks


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    subdistrict: str | None  # offices only
    password: str  # the scrypt hash


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` of ``password`` with a new random salt."""
    salt = secrets.token_bytes(16)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(_scrypt(password, salt, _N, _R, _P))])


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` hashes to ``stored``, compared in constant time; False for a malformed hash."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        cost = int(n), int(r), int(p)
        expected = base64.b64decode(digest, validate=True)
        salt_bytes = base64.b64decode(salt, validate=True)
    except ValueError:
        return False
    if kind != "scrypt" or not (1 < cost[0] <= _MAX_N and 0 < cost[1] <= 32 and 0 < cost[2] <= 4):
        return False
    return hmac.compare_digest(_scrypt(password, salt_bytes, *cost, size=len(expected)), expected)


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ConfigError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, size: int = 32) -> bytes:
    with _HASHING:
        return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 * r * n * p + (1 << 20),
                              dklen=size)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def read_users(path: Path) -> dict[str, Account]:
    """The accounts of the file; ConfigError naming the account and what is wrong."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the users file {path}: {exc}") from None
    table = data.get("users", {})
    if not isinstance(table, dict) or set(data) - {"users"}:
        raise ConfigError(f"{path}: expected [users.NAME] tables only")
    return {name: _account(path, name, entry) for name, entry in table.items()}


def _account(path: Path, name: str, entry: object) -> Account:
    where = f"{path}: [users.{name}]"
    if not NAME.fullmatch(name) or not isinstance(entry, dict):
        raise ConfigError(f"{where}: a name is 1-64 letters, digits, - or _, and its entry a table")
    role, office, password = entry.get("role"), entry.get("subdistrict"), entry.get("password")
    if role not in ROLES:
        raise ConfigError(f"{where}: role must be one of {', '.join(ROLES)}")
    if (role == OFFICE) != isinstance(office, str):
        raise ConfigError(f"{where}: an office account has a subdistrict, and only an office account")
    if not isinstance(password, str) or not password.startswith("scrypt$"):
        raise ConfigError(f"{where}: password must be a hash written by tracer users add")
    return Account(name, role, office, password)


def add_user(path: Path, account: Account) -> None:
    """Append ``account`` to the users file, replacing the file whole (created owner-only)."""
    if account.name in read_users(path):
        raise ConfigError(f"{path} already has an account {account.name!r}: remove its section to replace it")
    try:
        old = path.read_bytes()
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        old, mode = b"", 0o600
    section = [f"[users.{account.name}]", f'role = "{account.role}"']
    if account.subdistrict is not None:
        section.append(f'subdistrict = "{account.subdistrict}"')
    section.append(f'password = "{account.password}"')
    text = (old.rstrip(b"\n") + b"\n\n" if old.strip() else b"") + ("\n".join(section) + "\n").encode()
    scratch = path.with_name(f".{path.name}.new")
    try:
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as target:
            target.write(text)
            target.flush()
            os.fsync(target.fileno())
        os.replace(scratch, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def check_office(code: str, codes: frozenset[str]) -> None:
    if code != UNASSIGNED and code not in codes:
        raise ConfigError(f"--subdistrict {code[:40]!r} is not in the subdistrict list (a 9-digit code, "
                          f"e.g. 310101002, or {UNASSIGNED!r})")


class Users:
    """The accounts of a users file, read again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._accounts: dict[str, Account] = {}
        self.get("")  # read now: a broken file stops the console at start

    def get(self, name: str) -> Account | None:
        try:
            found = self.path.stat()
            stamp = (found.st_mtime_ns, found.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._accounts, self._stamp = read_users(self.path), stamp
            return self._accounts.get(name)
