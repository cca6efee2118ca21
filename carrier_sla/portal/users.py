"""The portal's users file: who may log in, with which role, and their password hashes.

A TOML file (JSON is read too, same structure), one table per user:

    [users."ana"]
    role = "clec"               # clec, staff or ilec
    carrier = "CLEC07"          # clec users only: the carrier whose data the user sees
    password = "$argon2id$v=19$m=65536,t=3,p=4$..."

`carrier-sla user add NAME --users FILE (--carrier C | --role staff|ilec)` adds or replaces a user;
passwords are stored only as Argon2id hashes (argon2-cffi's defaults, RFC 9106's second
recommended setting). The file is rewritten whole through a temporary file and a rename, mode 0600.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from carrier_sla import vocabulary
from carrier_sla.errors import UsageError

ROLES = ("clec", "staff", "ilec")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# the input contract's carrier id: it cannot spell the all-CLEC aggregate's `_all` (vocabulary.AGGREGATE)
CARRIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
MIN_PASSWORD = 8


@dataclass(frozen=True)
class User:
    name: str
    role: str  # clec, staff or ilec
    carrier: str | None  # the CLEC's carrier id; None for staff and ilec
    password_hash: str

    @property
    def sees_all(self) -> bool:
        """Staff and ILEC users see every carrier; a CLEC user only its own."""
        return self.role != "clec"

    def may_see(self, carrier: str) -> bool:
        """Whether the user may open the pages of `carrier`. The all-CLEC aggregate is never a carrier of
        its own (its rows are shown beside a CLEC's cells), so /c/_all/... is nobody's."""
        if carrier == vocabulary.AGGREGATE:
            return False
        return self.sees_all or carrier == self.carrier


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password must have at least {MIN_PASSWORD} characters")
    return str(_hasher().hash(password))


# A hash of a password nobody has, verified for unknown names so that a login takes as long
# whether the name exists or not (no user enumeration by timing).
_DUMMY: list[str] = []


def check_password(user: User | None, password: str) -> bool:
    """Whether `password` is the user's (False for no user, after the same Argon2 work)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    if user is None:
        if not _DUMMY:
            _DUMMY.append(hasher.hash(os.urandom(16).hex()))
        target = _DUMMY[0]
    else:
        target = user.password_hash
    try:
        return bool(hasher.verify(target, password)) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def _user(name: str, entry: object, source: Path) -> User:
    where = f"{source}: user {name!r}"
    if not NAME.match(name):
        raise UsageError(f"{where}: not a user name (letters, digits, _ . @ -, up to 64)")
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a table with role, carrier and password")
    role, carrier, password = entry.get("role"), entry.get("carrier"), entry.get("password")
    if role not in ROLES:
        raise UsageError(f"{where}: role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "clec" and not (isinstance(carrier, str) and CARRIER.match(carrier)):
        raise UsageError(f"{where}: a clec user needs a carrier id (letters, digits, _ . -), not {carrier!r}")
    if role != "clec" and carrier is not None:
        raise UsageError(f"{where}: a {role} user sees every carrier and has no carrier")
    if not (isinstance(password, str) and password.startswith("$argon2")):
        raise UsageError(f"{where}: password must be an Argon2 hash (made by `carrier-sla user add`)")
    unknown = sorted(set(entry) - {"role", "carrier", "password"})
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return User(name, role, carrier, password)


def load_users(path: Path | str) -> dict[str, User]:
    """The users of a users file (TOML, or JSON when it ends in .json); UsageError naming the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the users file ({exc.strerror})") from exc
    try:
        doc = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path}: not a valid users file: {exc}") from exc
    users = doc.get("users", {}) if isinstance(doc, dict) else None
    if not isinstance(users, dict):
        raise UsageError(f"{path}: expected a [users] table")
    return {name: _user(name, entry, path) for name, entry in users.items()}


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string for these characters


def dump_users(users: dict[str, User]) -> str:
    lines = ["# carrier-sla portal users: made by `carrier-sla user add`; passwords are Argon2id hashes", ""]
    for name in sorted(users):
        u = users[name]
        lines.append(f"[users.{_toml_string(name)}]")
        lines.append(f"role = {_toml_string(u.role)}")
        if u.carrier is not None:
            lines.append(f"carrier = {_toml_string(u.carrier)}")
        lines += [f"password = {_toml_string(u.password_hash)}", ""]
    return "\n".join(lines)


def add_user(
    path: Path | str, name: str, password: str, *, carrier: str | None = None, role: str | None = None
) -> User:
    """Add (or replace) a user in the users file, creating it when missing; returns the user."""
    path = Path(path)
    if not NAME.match(name):
        raise UsageError(f"{name!r} is not a user name (letters, digits, _ . @ -, up to 64)")
    if (carrier is None) == (role is None):
        raise UsageError("give either --carrier (a CLEC user) or --role staff|ilec")
    if carrier is not None and not CARRIER.match(carrier):
        raise UsageError(f"carrier {carrier!r} is not a carrier id (letters, digits, _ . -)")
    if role is not None and role not in ("staff", "ilec"):
        raise UsageError(f"--role must be staff or ilec, not {role!r}")
    if path.suffix == ".json":
        raise UsageError(f"{path}: `user add` writes TOML users files (name it .toml)")
    users = load_users(path) if path.exists() else {}
    user = User(name, role or "clec", carrier, hash_password(password))
    users[name] = user
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(dump_users(users))
    os.replace(tmp, path)
    return user
