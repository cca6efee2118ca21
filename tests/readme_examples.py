"""The README's shell examples, run for real and compared with what the README shows.

    python -m tests.readme_examples            # run them all, print a diff per example that differs
    python -m tests.readme_examples --write    # rewrite the README's outputs from the run (make readme)

An example block is a fenced code block whose first line starts with `$ `. Each `$ COMMAND`
line starts one example; the lines after it, up to the next `$ ` line (blank lines before it
left out), are what the command prints: stdout and stderr together, in the order printed.

The scenario. The blocks run in README order, all in one empty scratch directory, as a reader
would type them: the first block's `generate` makes `demo-data/` (the Makefile's own command;
a test checks they agree) and its three `run`s make `out/demo-store`, as `make demo` does.
`carrier-sla` on PATH runs `python -m carrier_sla` of this checkout, with the interpreter running
this module. A command runs through bash (`set -o pipefail`), so `| tail -1`, `head -4 FILE` and
`cat FILE` work; it must exit with the code its trailing comment gives (`# exit 3`), else 0. A command whose
comment says it runs `until Ctrl-C` (a server) is stopped with Ctrl-C once it has printed as many
lines as the README shows (or after SERVER_WAIT_S) and SERVER_SETTLE_S more; it must not have
stopped by itself before.
The files the README's prose has the reader make before a command (a broken plan, plan
versions, excusals, ...) are made by the preparations in PREPARATIONS, each run before the first
command that names its file, as the prose describes them; each says which README text it follows.

Comparison. Both sides go through the same normalisation first:
- the scratch directory's absolute path is dropped (`/tmp/x/out/store` reads `out/store`);
- the times a run started or finished: a `YYYY-MM-DD HH:MM:SS` (or ISO `T`) time within an hour
  of a run id shown in the same output reads `YYYY-MM-DD hh:mm:ss`;
- run ids (`\\d{8}T\\d{6}Z-[0-9a-f]{6}`) are names: each id of the README stands for one real
  run, the same one wherever the README uses it again, in a later output or command (a command's
  id is replaced by the real one before it runs). An id a command uses before any output showed
  it stands for the latest run of the command's `--store` that no output has shown yet;
- the run's timed stage lines on stderr (`[    0.6s] read: ...`) are left out of every output;
  an output may say so in a first line `(stage lines on stderr left out)`, which is kept.
Then the README may cut: a line `...` (indented or not) or `[... any text ...]` matches any
number of lines, and `...` inside a line matches any text within the line (doctest's ELLIPSIS).
`--write` keeps these cuts where they stand and replaces the rest by the real output, then
replaces every README run id (prose too) by the real one. A block the scenario cannot run is
marked by `<!-- not checked: REASON -->` on the line before its fence; it is skipped, and the
test lists such blocks.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import difflib
import json
import os
import re
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"

RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")
TIME_PLACEHOLDER = "YYYY-MM-DD hh:mm:ss"
STAGE_MARKER = "(stage lines on stderr left out)"
STAGE_LINE = re.compile(r"^\[\s*\d+(?:\.\d+)?s\] ")
CUT_LINE = re.compile(r"^\s*(?:\.\.\.|\[\.\.\. .*\.\.\.\])\s*$")
EXIT_COMMENT = re.compile(r"#.*?\bexit (\d+)")
UNTIL_STOPPED = re.compile(r"#.*\buntil Ctrl-C")
NOT_CHECKED = re.compile(r"^<!-- not checked: (.*?) -->\s*$")
COMMAND_TIMEOUT_S = 600
CUT_STEP = 1e-6
SERVER_WAIT_S = 60
SERVER_SETTLE_S = 2


# ---------------------------------------------------------------------------------------------
# parsing


@dataclass
class Example:
    """One `$ COMMAND` of a block and the output the README shows for it."""

    line: int  # 1-based README line of the command
    command: str
    expected: list[str]
    blank_after: int  # blank lines between this output and the next command

    @property
    def exit_code(self) -> int:
        found = EXIT_COMMENT.search(self.command)
        return int(found.group(1)) if found else 0

    @property
    def until_stopped(self) -> bool:
        return UNTIL_STOPPED.search(self.command) is not None


@dataclass
class Block:
    """A fenced example block: README lines [start, end) between its fences (0-based)."""

    start: int
    end: int
    examples: list[Example]
    not_checked: str | None = None


def parse(text: str) -> list[Block]:
    """The README's example blocks, in order."""
    lines = text.split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        body = lines[i + 1 : end]
        if lines[i].strip() == "```" and body and body[0].startswith("$ "):
            reason = None
            if i > 0 and (marker := NOT_CHECKED.match(lines[i - 1])):
                reason = marker.group(1)
            blocks.append(Block(i + 1, end, _examples(body, i + 1), reason))
        i = end + 1
    return blocks


def _examples(body: list[str], first: int) -> list[Example]:
    examples: list[Example] = []
    for offset, line in enumerate(body):
        if line.startswith("$ "):
            examples.append(Example(first + offset + 1, line[2:], [], 0))
        else:
            examples[-1].expected.append(line)
    for example in examples:
        while example.expected and not example.expected[-1].strip():
            example.expected.pop()
            example.blank_after += 1
    return examples


# ---------------------------------------------------------------------------------------------
# normalisation and matching


def localise(text: str, cwd: Path) -> str:
    """The output as the README shows it: paths relative to the scratch directory."""
    return text.replace(f"{cwd}/", "").replace(str(cwd), ".")


def _run_times(lines: list[str]) -> list[datetime]:
    return [datetime.strptime(found[:15], "%Y%m%dT%H%M%S") for line in lines for found in RUN_ID.findall(line)]


def normalise(lines: list[str]) -> list[str]:
    """Times within an hour of a run id shown in the same output become a placeholder."""
    runs = _run_times(lines)

    def hide(match: re.Match[str]) -> str:
        when = datetime.strptime(match.group(0).replace("T", " "), "%Y-%m-%d %H:%M:%S")
        near = any(abs(when - run) <= timedelta(hours=1) for run in runs)
        return TIME_PLACEHOLDER if near else match.group(0)

    return [TIME.sub(hide, line) for line in lines]


def _line_pattern(line: str, ids: Callable[[str], str] | None = None) -> str:
    """A regex for one expected line: `...` matches any text, a run id any run id (or `ids`)."""
    out: list[str] = []
    for index, part in enumerate(line.split("...")):
        if index:
            out.append("(.*?)")
        position = 0
        for found in RUN_ID.finditer(part):
            out.append(re.escape(part[position : found.start()]))
            out.append(ids(found.group(0)) if ids else RUN_ID.pattern)
            position = found.end()
        out.append(re.escape(part[position:]))
    return "".join(out)


def line_matches(expected: str, actual: str) -> bool:
    return CUT_LINE.match(expected) is None and re.fullmatch(_line_pattern(expected), actual) is not None


def match(expected: list[str], actual: list[str], known: dict[str, str]) -> dict[str, str] | None:
    """The README ids of `expected` mapped to real ids when the output matches; else None.

    `known` maps README ids met before to their real ids; a new README id must stand for a real id
    no other README id stands for.
    """
    expected, actual = normalise(expected), normalise(actual)
    groups: dict[str, str] = {}

    def ids(readme_id: str) -> str:
        if readme_id in known:
            return re.escape(known[readme_id])
        if readme_id in groups:
            return f"(?P={groups[readme_id]})"
        groups[readme_id] = f"r{len(groups)}"
        return f"(?P<{groups[readme_id]}>{RUN_ID.pattern})"

    parts = ["(?:[^\n]*\n)*?" if CUT_LINE.match(line) else _line_pattern(line, ids) + "\n" for line in expected]
    found = re.fullmatch("".join(parts), "".join(line + "\n" for line in actual))
    if found is None:
        return None
    new = {readme_id: found.group(name) for readme_id, name in groups.items()}
    taken = set(known.values())
    if any(real in taken for real in new.values()) or len(set(new.values())) < len(new):
        return None  # two README ids for one run, or one README id for two
    return new


# ---------------------------------------------------------------------------------------------
# rendering: the real output with the README's cuts kept (for --write and for diffs)


def render(expected: list[str], actual: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """`actual` with the cuts of `expected` kept where they stand, and pairs of lines aligned.

    The alignment is a global one (edit distance) in which a cut line absorbs any number of
    output lines at almost no cost (CUT_STEP each, so that a tie goes to the lines kept), a matching line costs 0, a changed line 2 x (1 - similarity), a
    line only on one side 1. The pairs (expected line, actual line) let --write learn the real
    ids of a block that no longer matches.
    """
    norm_e, norm_a = normalise(expected), normalise(actual)
    n, m = len(expected), len(actual)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    move: list[list[str]] = [[""] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 and j == 0:
                continue
            best, how = inf, ""
            if i and CUT_LINE.match(expected[i - 1]):
                if cost[i - 1][j] < best:
                    best, how = cost[i - 1][j], "cut_end"
                if j and cost[i][j - 1] + CUT_STEP < best:
                    best, how = cost[i][j - 1] + CUT_STEP, "cut_eat"
            else:
                if i and j:
                    if line_matches(norm_e[i - 1], norm_a[j - 1]):
                        step = 0.0
                    else:  # compared as it would be written, its in-line cuts kept
                        shown = _cut_inline(norm_e[i - 1], norm_a[j - 1]) or norm_a[j - 1]
                        step = 2 * (1 - difflib.SequenceMatcher(None, norm_e[i - 1], shown).ratio())
                    if cost[i - 1][j - 1] + step < best:
                        best, how = cost[i - 1][j - 1] + step, "pair"
                if i and cost[i - 1][j] + 1 < best:
                    best, how = cost[i - 1][j] + 1, "drop"
                if j and cost[i][j - 1] + 1 < best:
                    best, how = cost[i][j - 1] + 1, "add"
            cost[i][j], move[i][j] = best, how
    out: list[str] = []
    pairs: list[tuple[str, str]] = []
    i, j = n, m
    while i or j:
        how = move[i][j]
        if how == "cut_end":
            out.append(expected[i - 1])
            i -= 1
        elif how == "cut_eat":
            j -= 1
        elif how == "pair":
            pairs.append((expected[i - 1], actual[j - 1]))
            out.append(_keep_inline_cuts(expected[i - 1], actual[j - 1]))
            i, j = i - 1, j - 1
        elif how == "drop":
            i -= 1
        else:
            out.append(actual[j - 1])
            j -= 1
    out.reverse()
    pairs.reverse()
    return out, pairs


def _keep_inline_cuts(expected: str, actual: str) -> str:
    """`actual` with the text the `...` of `expected` stands for cut again."""
    cut = _cut_inline(expected, actual)
    if cut is None:
        if "..." not in actual:
            print(
                f"readme_examples: could not keep the cut of {expected!r}; the whole line is written", file=sys.stderr
            )
        return actual
    return cut


def _cut_inline(expected: str, actual: str) -> str | None:
    """`actual` cut where `expected` has `...`: exactly when it matches; otherwise a CSV line by
    the same columns, a line ending in ` ...` after as many words; else None."""
    if "..." not in expected:
        return actual
    found = re.fullmatch(_line_pattern(expected), actual)
    if found is not None:
        pieces, position = [], 0
        for index in range(1, (found.lastindex or 0) + 1):
            pieces.append(actual[position : found.start(index)])
            pieces.append("...")
            position = found.end(index)
        pieces.append(actual[position:])
        return "".join(pieces)
    fields = expected.split(",")
    if "..." in fields:  # a CSV line cut by columns: the same columns cut by position
        before = fields.index("...")
        after = len(fields) - before - 1
        real = actual.split(",")
        if len(real) > before + after:
            return ",".join([*real[:before], "...", *real[len(real) - after :]])
    if expected.endswith(" ...") and expected.count("...") == 1:  # the rest of a line cut after a word
        words = expected[:-4].split(" ")
        real = actual.split(" ")
        if len(real) > len(words):
            return " ".join(real[: len(words)]) + " ..."
    return None


# ---------------------------------------------------------------------------------------------
# the files the README's prose has the reader make


def _bundled_plan() -> dict:
    return json.loads((REPO / "carrier_sla" / "plans" / "example-qc.json").read_text())


def _write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def make_broken_plan(cwd: Path) -> None:
    """README, "Errors name what is wrong and where": example-qc with the four mistakes the output lists."""
    plan = _bundled_plan()
    plan["measures"][1]["exclusions"][0]["when"][0]["field"] = "is_tset"
    plan["measures"][2]["standards"][0]["target"] = "six"
    del plan["measures"][3]["period_by"]
    plan["products"][4]["retail_analog"] = "pots2"
    _write_json(cwd / "broken-plan.json", plan)


def make_broken_data(cwd: Path) -> None:
    """demo-data whose orders.csv lacks the column received_at."""
    target = cwd / "broken-data"
    target.mkdir()
    for name in ("troubles.csv", "lines.csv"):
        shutil.copy(cwd / "demo-data" / name, target / name)
    with (
        (cwd / "demo-data" / "orders.csv").open(newline="") as src,
        (target / "orders.csv").open("w", newline="") as dst,
    ):
        reader = csv.DictReader(src)
        columns = [c for c in reader.fieldnames or [] if c != "received_at"]
        writer = csv.DictWriter(dst, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(reader)


def make_restatement(cwd: Path) -> None:
    """README, what-if: "plan version 1.0.1 without that exclusion" (the block copies the store)."""
    plan = _bundled_plan()
    plan["version"] = "1.0.1"
    for measure in plan["measures"]:
        measure["exclusions"] = [e for e in measure.get("exclusions", []) if e["code"] != "customer_caused_miss"]
    _write_json(cwd / "plan-no-customer-misses.json", plan)


def _plan_versions(folder: Path, v2_from: str) -> None:
    """README, Versions in force by month: "`plans/qc/v1.json` is example-qc with effective_to 2026-09-30, and v2.json (1.1.0, from
    2026-10-01) raises the critical value for 10 or fewer CLEC records from 1.04 to 1.28 and
    Tier 1's high amounts for the first two months from $150 and $250 to $200 and $300"."""
    v1 = _bundled_plan()
    v1["effective_to"] = "2026-09-30"
    v2 = _bundled_plan()
    v2.update(version="1.1.0", effective_from=v2_from, effective_to=None)
    first = v2["statistics"]["critical_values"]["clec"][0]
    assert first == {"max_n": 10, "value": 1.04}, first
    first["value"] = 1.28
    high = v2["remedies"]["tiers"]["tier1"]["amounts"]["high"]
    assert high[:2] == [150, 250], high
    high[:2] = [200, 300]
    _write_json(folder / "v1.json", v1)
    _write_json(folder / "v2.json", v2)


def make_plan_versions(cwd: Path) -> None:
    _plan_versions(cwd / "plans" / "qc", "2026-10-01")


def make_plan_gap(cwd: Path) -> None:
    """README: "the same with v2 from 2026-11-01"."""
    _plan_versions(cwd / "plans" / "qc-gap", "2026-11-01")


EXCUSALS = """\
period,measure_id,state,product,submeasure,carrier_id,record_type,record_id,reason,reference,approved_on
2026-09,OP-4,CO,resale_pots,dispatch=false,CLEC03,,,force majeure: Front Range blizzard of 2026-09-08,PUC-26-0417,2026-11-20
2026-09,,,,,,troubles,T000012454,force majeure: Wasatch ice storm of 2026-09-08,PUC-26-0418,2026-11-20
"""

BAD_EXCUSALS = """\
period,measure_id,state,product,submeasure,carrier_id,record_type,record_id,reason,reference,approved_on
2026-10,OP-3,CO,resale_pots,all,CLEC13,,,force majeure: a cell that does not exist,PUC-26-0420,2026-11-20
2026-10,,,,,,orders,O999999999,force majeure: a record that does not exist,PUC-26-0420,2026-11-20
"""


def make_excusals(cwd: Path) -> None:
    """README, excusals: "September restated with two excusals: CLEC03's Colorado resale installation intervals
    (dispatch=false) excused, and one Utah trouble ticket of CLEC05 excluded"."""
    (cwd / "demo-data" / "excusals.csv").write_text(EXCUSALS)


def make_bad_data(cwd: Path) -> None:
    """README: "An excusal that matches nothing": demo-data with an excusals.csv of two such rows."""
    target = cwd / "bad-data"
    target.mkdir()
    for name in ("orders.csv", "troubles.csv", "lines.csv"):
        shutil.copy(cwd / "demo-data" / name, target / name)
    (target / "excusals.csv").write_text(BAD_EXCUSALS)


def makefile_variables() -> dict[str, str]:
    """The Makefile's `NAME := value` lines."""
    return dict(re.findall(r"^(\w+) := (.*)$", (REPO / "Makefile").read_text(), re.MULTILINE))


def make_demo_users(cwd: Path) -> None:
    """README, the CLEC portal: "`make demo` ends by printing how to start it on the demo store, with
    two demo users in `out/demo-users.toml`": the Makefile's two `user add` commands."""
    variables = makefile_variables()
    users = cwd / variables["DEMO_USERS"]
    users.parent.mkdir(parents=True, exist_ok=True)
    for name, who in (("demo-clec", ["--carrier", variables["DEMO_CARRIER"]]), ("demo-staff", ["--role", "staff"])):
        subprocess.run(
            [sys.executable, "-m", "carrier_sla", "user", "add", name, "--users", str(users), *who, "--password-stdin"],
            input=variables["DEMO_PASSWORD"] + "\n",
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
        )


# (text a command names, preparation): each runs once, before the first command naming it.
PREPARATIONS: list[tuple[str, Callable[[Path], None]]] = [
    ("broken-plan.json", make_broken_plan),
    ("broken-data", make_broken_data),
    ("plan-no-customer-misses.json", make_restatement),
    ("plans/qc-gap", make_plan_gap),
    ("plans/qc", make_plan_versions),
    ("demo-data/excusals.csv", make_excusals),
    ("bad-data", make_bad_data),
    ("out/demo-users.toml", make_demo_users),
]


# ---------------------------------------------------------------------------------------------
# the scenario


@dataclass
class Outcome:
    example: Example
    block: Block
    command: str  # as run, with real run ids
    exit_code: int
    actual: list[str]  # localised output lines
    ids: dict[str, str] | None  # README id -> real id learned from this output; None: no match
    seconds: float

    @property
    def ok(self) -> bool:
        return self.ids is not None and self.exit_code == self.example.exit_code

    def report(self) -> str:
        """What differs, as a diff naming the README line."""
        rendered, _ = render(self.example.expected, self.actual)
        lines = [f"README.md:{self.example.line}: $ {self.example.command}"]
        if self.exit_code != self.example.exit_code:
            lines.append(f"exit code {self.exit_code}, the README says {self.example.exit_code}")
        diff = difflib.unified_diff(
            self.example.expected,
            rendered,
            f"README.md:{self.example.line}",
            "real output (README cuts kept)",
            lineterm="",
        )
        lines.extend(diff)
        if self.ids is None and rendered == self.example.expected:
            lines.append("(the lines agree but a run id does not stand for the same run as elsewhere in the README)")
        return "\n".join(lines)


@dataclass
class Scenario:
    cwd: Path
    outcomes: list[Outcome] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # README run id -> real run id
    prepared: list[str] = field(default_factory=list)
    skipped: list[Block] = field(default_factory=list)
    seconds: float = 0.0


def _bin_dir(cwd: Path) -> Path:
    """A folder holding `carrier-sla`: this interpreter running this checkout's carrier_sla."""
    folder = cwd.parent / f"{cwd.name}-bin"
    folder.mkdir(exist_ok=True)
    script = folder / "carrier-sla"
    script.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" -m carrier_sla "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def _store_of(command: str) -> str | None:
    found = re.search(r"--store\s+(\S+)", command)
    return found.group(1) if found else None


def _real_command(command: str, scenario: Scenario) -> str:
    """The command with the README's run ids replaced by the real ones."""

    def real(found: re.Match[str]) -> str:
        readme_id = found.group(0)
        if readme_id not in scenario.ids:
            store = _store_of(command)
            runs = sorted((scenario.cwd / store / "runs").iterdir()) if store else []
            shown = set(scenario.ids.values())
            unshown = [run.name for run in runs if run.name not in shown]
            if not unshown:
                raise RuntimeError(f"no run of {store} for the README's run id {readme_id} in: {command}")
            scenario.ids[readme_id] = unshown[-1]
        return scenario.ids[readme_id]

    return RUN_ID.sub(real, command)


def run_scenario(text: str, cwd: Path, *, echo: Callable[[str], None] | None = None) -> Scenario:
    """Run every example block of `text` (README contents) in order in the empty folder `cwd`."""
    cwd.mkdir(parents=True, exist_ok=True)
    scenario = Scenario(cwd)
    env = dict(os.environ)
    env.update(
        PATH=f"{_bin_dir(cwd)}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",  # stdout and stderr in the order printed
        TZ="UTC",
        LC_ALL="C.UTF-8",
        COLUMNS="200",
    )
    env.pop("PYTHONPATH", None)
    started = time.monotonic()
    for block in parse(text):
        if block.not_checked is not None:
            scenario.skipped.append(block)
            continue
        for example in block.examples:
            for name, prepare in PREPARATIONS:
                if name in example.command and name not in scenario.prepared:
                    prepare(cwd)
                    scenario.prepared.append(name)
            command = _real_command(example.command, scenario)
            if echo:
                echo(f"README.md:{example.line}: $ {command}")
            begin = time.monotonic()
            if example.until_stopped:
                exit_code, output = _run_until_stopped(command, cwd, env, len(example.expected), example.exit_code)
            else:
                done = subprocess.run(
                    ["bash", "-c", f"set -o pipefail\n{command}"],
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=COMMAND_TIMEOUT_S,
                    check=False,
                )
                exit_code, output = done.returncode, done.stdout
            actual = localise(output, cwd).rstrip("\n").split("\n") if output.strip() else []
            actual = [line for line in actual if not STAGE_LINE.match(line)]
            if example.expected[:1] == [STAGE_MARKER]:
                actual.insert(0, STAGE_MARKER)
            ids = match(example.expected, actual, scenario.ids)
            if ids is None:  # learn the ids from the closest alignment, for the commands after it
                ids_learned = _ids_from_alignment(example.expected, actual, scenario.ids)
                scenario.ids.update(ids_learned)
            else:
                scenario.ids.update(ids)
            scenario.outcomes.append(Outcome(example, block, command, exit_code, actual, ids, time.monotonic() - begin))
    scenario.seconds = time.monotonic() - started
    return scenario


def _run_until_stopped(command: str, cwd: Path, env: dict[str, str], lines: int, expected_exit: int) -> tuple[int, str]:
    """A server's first `lines` lines, then Ctrl-C (SIGINT to its process group). The exit code is
    the expected one when it was still running, its own when it stopped by itself."""
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + SERVER_WAIT_S
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while output.count(b"\n") < lines and time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break  # it stopped by itself
            output += chunk
    with contextlib.suppress(subprocess.TimeoutExpired):  # a failing command prints its lines and exits
        process.wait(timeout=SERVER_SETTLE_S)
    running = process.poll() is None
    if running:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    else:
        output += process.stdout.read()
    process.stdout.close()
    text = output.decode()
    if running:  # what it printed up to the README's lines; the rest is its shutdown
        text = "".join(text.splitlines(keepends=True)[:lines])
    return (expected_exit if running else process.returncode), text


def _ids_from_alignment(expected: list[str], actual: list[str], known: dict[str, str]) -> dict[str, str]:
    """README id -> real id from the lines the alignment pairs (a stale README may use two ids for
    one run; --write then writes the one real id for both)."""
    learned: dict[str, str] = {}
    _, pairs = render(expected, actual)
    for readme_line, real_line in pairs:
        readme_ids, real_ids = RUN_ID.findall(readme_line), RUN_ID.findall(real_line)
        if len(readme_ids) != len(real_ids):
            continue
        for readme_id, real_id in zip(readme_ids, real_ids, strict=True):
            if readme_id not in known and readme_id not in learned:
                learned[readme_id] = real_id
    return learned


# ---------------------------------------------------------------------------------------------
# --write


def rewrite(text: str, scenario: Scenario) -> str:
    """`text` with every checked example's output replaced by the real one (cuts kept) and every
    README run id by the real id it stands for."""
    lines = text.split("\n")
    by_block: dict[int, list[Outcome]] = {}
    for outcome in scenario.outcomes:
        by_block.setdefault(outcome.block.start, []).append(outcome)
    for start in sorted(by_block, reverse=True):
        outcomes = by_block[start]
        block = outcomes[0].block
        body: list[str] = []
        for outcome in outcomes:
            body.append(f"$ {outcome.example.command}")
            rendered, _ = render(outcome.example.expected, outcome.actual)
            body.extend(rendered)
            body.extend([""] * outcome.example.blank_after)
        lines[block.start : block.end] = body
    new = "\n".join(lines)
    return RUN_ID.sub(lambda found: scenario.ids.get(found.group(0), found.group(0)), new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.readme_examples", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite README.md's outputs from the run")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it, instead of a temporary one")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    with tempfile.TemporaryDirectory(prefix="readme-examples-") as tmp:
        cwd = args.keep.resolve() if args.keep else Path(tmp) / "work"
        scenario = run_scenario(text, cwd, echo=lambda line: print(line, file=sys.stderr, flush=True))
        failed = [outcome for outcome in scenario.outcomes if not outcome.ok]
        for outcome in failed:
            print(outcome.report(), end="\n\n")
        for block in scenario.skipped:
            print(f"README.md:{block.start}: not checked: {block.not_checked}")
        unused = [name for name, _ in PREPARATIONS if name not in scenario.prepared]
        if unused:
            print(f"preparations no command used: {', '.join(unused)}")
        print(
            f"{len(scenario.outcomes)} examples run in {scenario.seconds:.0f} s: "
            f"{len(scenario.outcomes) - len(failed)} match, {len(failed)} differ",
            file=sys.stderr,
        )
        if args.write:
            new = rewrite(text, scenario)
            if new != text:
                args.readme.write_text(new)
                print(f"rewrote {args.readme}; review it with git diff", file=sys.stderr)
            bad_exits = [o for o in failed if o.exit_code != o.example.exit_code]
            for outcome in bad_exits:
                print(f"README.md:{outcome.example.line}: exit {outcome.exit_code}, not {outcome.example.exit_code}")
            return 1 if bad_exits or unused else 0
    return 1 if failed or unused else 0


if __name__ == "__main__":
    sys.exit(main())
