"""What a plan document must be before its schema is checked: keys given once, finite numbers,
Unicode text, and a nesting no deeper than MAX_DEPTH (so that nothing after it recurses without
bound).

Python's json module takes NaN, Infinity and 1e309 (infinity) as numbers and keeps the last of
a repeated key; a NaN critical value turned every small parity cell into `met`, and a repeated
key silently replaced the first. The parser hooks below keep what the document said, and
`problems` names each case with its JSON pointer.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from carrier_sla.errors import PlanProblem

MAX_DEPTH = 64  # the bundled plans nest 8 levels deep
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep (no part of a plan nests that deep)"


class RepeatedKeys(dict):
    """An object of the document in which some keys appeared more than once (the last value kept,
    as json does); `repeated` holds each such key and how many times it appeared."""

    repeated: dict[str, int]


def object_pairs(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """json's object_pairs_hook (and the YAML loader's): a dict, or RepeatedKeys when a key repeats."""
    counts = Counter(key for key, _ in pairs)
    if len(counts) == len(pairs):
        return dict(pairs)
    out = RepeatedKeys(pairs)
    out.repeated = {str(key): n for key, n in counts.items() if n > 1}
    return out


def _escape(key: Any) -> str:
    """A key as a JSON pointer token (RFC 6901)."""
    return str(key).replace("~", "~0").replace("/", "~1")


NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _unicode(text: str) -> bool:
    """Whether a string is Unicode text: JSON's \\ud800 escapes give unpaired surrogates, which
    no output (a terminal, a Parquet file's metadata) can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def problems(document: Any) -> tuple[list[PlanProblem], bool]:
    """(every repeated key, non-finite number, text that is not Unicode and part nested deeper than
    MAX_DEPTH, each with its pointer; whether the document is too deep to check further). Walks
    without recursion."""
    out: list[PlanProblem] = []
    too_deep = False
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        node, pointer, depth = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            out.append(
                PlanProblem(
                    pointer,
                    f"{NON_FINITE[repr(node)]} is not a finite number (a plan's numbers are finite; 1e309 overflows "
                    "to Infinity)",
                )
            )
        if isinstance(node, str) and not _unicode(node):
            out.append(
                PlanProblem(pointer, f"{node!r} holds an unpaired surrogate (a \\ud800 escape): not Unicode text")
            )
        if not isinstance(node, dict | list):
            continue
        if depth >= MAX_DEPTH:
            out.append(PlanProblem(pointer, TOO_DEEP))
            too_deep = True
            continue
        for key in node if isinstance(node, dict) else ():
            if isinstance(key, str) and not _unicode(key):
                out.append(PlanProblem(pointer, f"key {key!r} holds an unpaired surrogate: not Unicode text"))
        if isinstance(node, RepeatedKeys):
            for key, n in node.repeated.items():
                out.append(
                    PlanProblem(
                        f"{pointer}/{_escape(key)}",
                        f"key {key!r} appears {n} times in this object; JSON keeps only the last: give it once",
                    )
                )
        items = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((value, f"{pointer}/{_escape(key)}", depth + 1) for key, value in items)
    return out, too_deep
