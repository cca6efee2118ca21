"""The config file: defaults for the commands' options, so that a cron line needs no paths.

`carrier-sla.toml` in the working directory, or the file given by `--config PATH` (which must
exist). Top-level keys: `plan`, `data` and `store` (the plan of `run` and `validate`, the input
folder of `run`, `validate` and `what-if`, the store of `run` (--out) and of every command with
--store); and one table per command (`[run]`, `[report]` ...) whose keys are that command's
long options, with - or _ (`max_reject_rate = 0.02`, `allow-empty = true`, `log_format = "json"`).
Command-line arguments override the file. A key the file may not hold (unknown, `help`, `config`,
`debug`), a value of the wrong kind, a choice not offered: UsageError (exit 2) naming the file and
the key. Relative paths in the file are taken from the working directory, as on the command line.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from carrier_sla.errors import UsageError

FILENAME = "carrier-sla.toml"
# top-level key -> {command: option dest}
SHARED = {
    "plan": {"run": "plan", "validate": "plan"},
    "data": {"run": "data", "validate": "data", "what-if": "data"},
    "store": {"run": "out"},  # and every command whose --store takes one store
}
NOT_CONFIGURABLE = {"help", "config", "debug", "command", "command_module", "version"}


def find(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """The config file to read: `explicit` (UsageError when missing), else ./carrier-sla.toml when present."""
    if explicit is not None:
        if not explicit.is_file():
            raise UsageError(f"--config {explicit}: no such file")
        return explicit
    default = (cwd or Path.cwd()) / FILENAME
    return default if default.is_file() else None


def read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest not in NOT_CONFIGURABLE}


def defaults(path: Path, document: dict[str, Any], commands: dict[str, argparse.ArgumentParser]) -> dict[str, dict]:
    """{command: {dest: value}} from the file; UsageError naming the file and key of the first problem."""
    out: dict[str, dict[str, Any]] = {name: {} for name in commands}
    for key, value in document.items():
        if key in SHARED:
            if not isinstance(value, str) or not value:
                raise UsageError(f"{path}: {key} must be a non-empty string (a path or plan id)")
            for name, parser in commands.items():
                dest = SHARED[key].get(name)
                if dest is None and key == "store":
                    action = _options(parser).get("store")
                    dest = "store" if action is not None and action.nargs is None and not _appends(action) else None
                if dest is not None:
                    out[name][dest] = _convert(path, key, _options(parser)[dest], value)
            continue
        if key not in commands or not isinstance(value, dict):
            known = ", ".join([*SHARED, *(f"[{c}]" for c in commands)])
            raise UsageError(f"{path}: unknown key {key!r} (known: {known})")
        options = _options(commands[key])
        for option, given in value.items():
            dest = option.replace("-", "_")
            if dest not in options:
                raise UsageError(f"{path}: unknown key {key}.{option} (not an option of {key})")
            out[key][dest] = _convert(path, f"{key}.{option}", options[dest], given)
    return out


def _appends(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction)


def _convert(path: Path, key: str, action: argparse.Action, value: Any) -> Any:
    """A TOML value as the option's parsed value (through its type, checked against its choices)."""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise UsageError(f"{path}: {key} must be true or false")
        return value
    if isinstance(value, bool | dict | list):
        raise UsageError(f"{path}: {key} must be a string or a number")
    converter = action.type if callable(action.type) else None
    try:
        result = converter(str(value)) if converter is not None else value
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise UsageError(f"{path}: {key}: {exc}") from None
    if action.choices is not None and result not in action.choices:
        raise UsageError(f"{path}: {key} must be one of {', '.join(map(str, action.choices))}")
    return result
