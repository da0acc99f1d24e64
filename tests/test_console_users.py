"""The console's accounts: `tracer users add` (password from stdin or a prompt, never a flag; the
office code checked against the subdistrict list), the users file, its scrypt hashes and the
session key beside it."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from streams.console.auth import KEY_VARIABLE, session_key
from streams.console.users import Users, hash_password, read_users, verify_password
from tracer.cli import main
from tracer.errors import ConfigError

PASSWORD = "a long enough password"


def add(monkeypatch: pytest.MonkeyPatch, users: Path, *args: str, password: str = PASSWORD) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["users", "add", *args, "--users", str(users), "--password-stdin"])


def test_an_added_account_is_a_salted_scrypt_hash_in_an_owner_only_file(tmp_path: Path, monkeypatch) -> None:
    users = tmp_path / "users.toml"
    assert add(monkeypatch, users, "wang", "--role", "office", "--subdistrict", "310101002") == 0
    assert add(monkeypatch, users, "li", "--role", "supervisor") == 0
    text = users.read_text()
    assert PASSWORD not in text and text.count("scrypt$32768$8$1$") == 2
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    accounts = read_users(users)
    assert (accounts["wang"].role, accounts["wang"].subdistrict) == ("office", "310101002")
    assert accounts["li"].subdistrict is None
    assert verify_password(PASSWORD, accounts["wang"].password)
    assert not verify_password(PASSWORD + "!", accounts["wang"].password)
    assert accounts["wang"].password.split("$")[4] != accounts["li"].password.split("$")[4]  # salts


@pytest.mark.parametrize(("args", "password", "message"), [
    (["wang", "--role", "office", "--subdistrict", "310101999"], PASSWORD, "is not in the subdistrict list"),
    (["wang", "--role", "office", "--subdistrict", "３１０１０１００２"], PASSWORD, "is not in the subdistrict list"),
    (["wang", "--role", "office"], PASSWORD, "an office account needs --subdistrict"),
    (["li", "--role", "supervisor", "--subdistrict", "310101002"], PASSWORD, "only an office account takes it"),
    (["wang li", "--role", "supervisor"], PASSWORD, "an account name is 1-64 letters"),
    (["li", "--role", "supervisor"], "short", "a password has 8 to 1024 characters"),
    (["taken", "--role", "supervisor"], PASSWORD, "already has an account 'taken'"),
])
def test_users_add_refuses_what_cannot_log_in_or_act(tmp_path: Path, monkeypatch, capsys, args: list[str],
                                                     password: str, message: str) -> None:
    users = tmp_path / "users.toml"
    assert add(monkeypatch, users, "taken", "--role", "epidemiologist") == 0
    before = users.read_bytes()
    assert add(monkeypatch, users, *args, password=password) == 2
    assert message in capsys.readouterr().err
    assert users.read_bytes() == before


def test_an_office_of_unassigned_residents_is_an_office(tmp_path: Path, monkeypatch) -> None:
    users = tmp_path / "users.toml"
    assert add(monkeypatch, users, "team", "--role", "office", "--subdistrict", "unassigned") == 0
    assert read_users(users)["team"].subdistrict == "unassigned"


def test_a_password_is_never_a_command_line_value(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["users", "add", "li", "--role", "supervisor", "--users", str(tmp_path / "u.toml"), "--password", "x"])
    assert stopped.value.code == 2


@pytest.mark.parametrize(("text", "message"), [
    ("[users.a]\nrole = 'admin'\npassword = 'scrypt$1'\n", "role must be one of"),
    ("[users.a]\nrole = 'office'\npassword = 'scrypt$1'\n", "an office account has a subdistrict"),
    ("[users.a]\nrole = 'supervisor'\npassword = 'hunter22'\n", "password must be a hash written by"),
    ("[users.a\n", "cannot read the users file"),
    ("[other]\n", "expected [users.NAME] tables only"),
])
def test_a_users_file_that_is_wrong_says_where(tmp_path: Path, text: str, message: str) -> None:
    users = tmp_path / "users.toml"
    users.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        Users(users)


def test_a_malformed_or_costly_hash_never_verifies() -> None:
    good = hash_password(PASSWORD)
    assert verify_password(PASSWORD, good)
    _, n, r, p, salt, digest = good.split("$")
    for stored in ("scrypt$", f"bcrypt${n}${r}${p}${salt}${digest}", f"scrypt${2**24}${r}${p}${salt}${digest}",
                   f"scrypt${n}${r}${p}$!!${digest}"):
        assert not verify_password(PASSWORD, stored)


def test_the_session_key_file_is_made_once_owner_only_and_an_open_one_is_refused(tmp_path: Path,
                                                                                monkeypatch) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    users = tmp_path / "users.toml"
    key = session_key(users)
    path = tmp_path / "users.toml.session-key"
    assert len(key) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600 and session_key(users) == key
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="can be read by others"):
        session_key(users)
    monkeypatch.setenv(KEY_VARIABLE, "short")
    with pytest.raises(ConfigError, match="at least 32 characters"):
        session_key(users)
    monkeypatch.setenv(KEY_VARIABLE, "k" * 32)
    assert session_key(users) == "k" * 32
