"""Logins and roles: who may sign in to the viewer, with which password, as reviewer or organiser.

An account is a line ``USER:SECRET[:ROLE]`` (``--auth`` or a line of ``--auth-file``). SECRET is a scrypt hash
(``scrypt$N$r$p$SALT$KEY``, made by ``liverclick accounts set``) or, still read with a warning, the password in
plain text. ROLE is ``reviewer`` (the default: reviews cases, sees their own records) or ``organiser`` (also
sees every review session's progress and agreement). Passwords are checked off the server's event loop and in
constant time; a wrong one costs a scrypt run, a missing account the same.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import getpass
import hashlib
import hmac
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from core.cli import CommandError, set_command

ROLES = ("reviewer", "organiser")
MIN_PASSWORD_CHARS = 8
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # 16 MB and ~50 ms a check on one core


class AccountError(ValueError):
    """An account line or file that cannot be used, with the reason."""


@dataclass(frozen=True)
class Account:
    name: str
    secret: str  # a scrypt hash, or a password in plain text
    role: str = "reviewer"

    @property
    def hashed(self) -> bool:
        return self.secret.startswith("scrypt$")

    def line(self) -> str:
        return f"{self.name}:{self.secret}:{self.role}"


def check_new_password(password: str) -> None:
    """The rule a password must meet to be set (``accounts set``) or given in plain text (``--auth``, a plain line
    of ``--auth-file``); AccountError saying why not. A hash cannot be checked: ``accounts set`` checked it."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$SALT$KEY`` (base64) of a password."""
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, maxmem=64 * 2**20, dklen=32, **SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${b64(salt).decode()}${b64(key).decode()}"


def check_password(password: str, secret: str) -> bool:
    """Whether ``password`` matches ``secret`` (a scrypt hash or plain text), in constant time."""
    if not secret.startswith("scrypt$"):
        return hmac.compare_digest(password.encode(), secret.encode())
    try:
        _, n, r, p, salt, key = secret.split("$")
        salt_bytes, key_bytes = base64.b64decode(salt), base64.b64decode(key)
        found = hashlib.scrypt(
            password.encode(), salt=salt_bytes, n=int(n), r=int(r), p=int(p), maxmem=64 * 2**20, dklen=len(key_bytes)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, key_bytes)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(8))


def parse_account(line: str) -> Account:
    """``USER:SECRET[:ROLE]`` -> Account (a trailing ``:reviewer``/``:organiser`` is the role)."""
    name, sep, rest = line.partition(":")
    secret, role = rest, "reviewer"
    head, sep2, last = rest.rpartition(":")
    if sep2 and last in ROLES:
        secret, role = head, last
    if not sep or not name or not secret:
        raise AccountError("each login must be USER:PASSWORD or USER:HASH, optionally :reviewer or :organiser")
    return Account(name, secret, role)


class Accounts:
    """The server's accounts: sign-in checks (Gradio's ``auth`` callable) and roles."""

    def __init__(self, accounts: list[Account]) -> None:
        self._by_name: dict[str, Account] = {}
        for account in accounts:
            if account.name in self._by_name:
                raise AccountError(f"the login {account.name!r} is given twice")
            self._by_name[account.name] = account

    @classmethod
    def read(cls, lines: list[str], path: Path | None = None) -> Accounts:
        """Accounts from ``--auth`` values and the lines of an auth file (blank lines and # comments skipped); a
        password in plain text must meet :func:`check_new_password`."""
        lines = list(lines or [])
        if path is not None:
            lines += [s.strip() for s in Path(path).read_text(encoding="utf-8").splitlines()]
        accounts = [parse_account(s) for s in lines if s and not s.startswith("#")]
        for account in accounts:
            if not account.hashed:
                try:
                    check_new_password(account.secret)
                except AccountError as exc:
                    raise AccountError(f"the login {account.name!r}: {exc}") from None
        return cls(accounts)

    @classmethod
    def of(cls, logins) -> Accounts | None:
        """Accounts from an Accounts, a list of (user, password) pairs (reviewers), or None."""
        if logins is None or isinstance(logins, Accounts):
            return logins or None
        return cls([Account(user, password) for user, password in logins])

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def plain(self) -> list[str]:
        """The logins whose password is kept in plain text."""
        return [a.name for a in self._by_name.values() if not a.hashed]

    def role(self, name: str | None) -> str | None:
        account = self._by_name.get(name or "")
        return account.role if account else None

    def is_organiser(self, name: str | None) -> bool:
        return self.role(name) == "organiser"

    def verify(self, name: str, password: str) -> bool:
        account = self._by_name.get(name)
        if account is None:
            check_password(password, _dummy_hash())  # as slow as a real check: no hint that the account is missing
            return False
        return check_password(password, account.secret)

    async def check(self, name: str, password: str) -> bool:
        """Gradio's sign-in check, run on a worker thread (scrypt takes tens of milliseconds)."""
        return await asyncio.to_thread(self.verify, name, password)


# --- liverclick accounts set ---------------------------------------------------------------------------------
def register(subparsers) -> None:
    p = subparsers.add_parser("accounts", help="logins of the web viewer (hashed passwords, roles)")
    actions = p.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")
    add = actions.add_parser("set", help="add a login, or change its password or role, in an auth file")
    add.add_argument("user")
    add.add_argument("--file", type=Path, required=True, help="the auth file (created if missing)")
    add.add_argument("--role", choices=ROLES, default="reviewer")
    set_command(add, set_main)


def set_main(args: argparse.Namespace) -> int:
    """Read the password (twice from a terminal, else one line of stdin) and write the user's hashed line."""
    if ":" in args.user or not args.user.strip():
        raise CommandError("a login name must be non-empty and hold no ':'")
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            raise CommandError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        check_new_password(password)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    lines = args.file.read_text(encoding="utf-8").splitlines() if args.file.is_file() else []
    kept = [s for s in lines if not s.strip() or s.lstrip().startswith("#") or parse_account(s).name != args.user]
    kept.append(Account(args.user, hash_password(password), args.role).line())
    args.file.parent.mkdir(parents=True, exist_ok=True)
    args.file.write_text("\n".join(kept) + "\n", encoding="utf-8")
    args.file.chmod(0o600)
    print(f"{args.file}: {args.user} ({args.role}), password hashed with scrypt")
    return 0
