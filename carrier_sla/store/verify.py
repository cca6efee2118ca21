"""Store integrity: each published run's manifest against its files, and the checks that a run,
`history` and every reader make before they trust the store.

What a store promises (carrier_sla.store.layout): every published view, STORE/runs/RUN_ID/view, holds per
table and period exactly the files of the run its provenance.json names (that run's own outputs,
or hard links to them), and that run's manifest lists each file with its rows (and, in runs
since issue 14, its bytes and sha256; older manifests are checked by presence and rows). So:

- verify_store (`carrier-sla verify`): every run's manifest readable; every published view there,
  its provenance readable, each of its (table, period) folders holding exactly the files its run's
  manifest lists, with their rows, bytes and sha256; STORE/current and the table links in place.
- require_intact (before a run, and `history`): the current view by presence and size only (no
  hashing, so it stays cheap). A run links every table of the current view into its own, so it
  refuses to build on damage it would carry forward; the (table, period) folders the run replaces
  may be damaged: re-running a damaged month is one way to repair it.
- require_period (readers: report, package, explain, diff, what-if): one period of one view.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from carrier_sla.errors import StoreDamaged, UsageError
from carrier_sla.store import layout as storemod


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a store: where (a path relative to the store) and what."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class Output:
    """A file a run's manifest lists: its path in a view (table/period=P/...) and what it held."""

    file: str
    rows: int | None
    bytes: int | None
    sha256: str | None
    statement: bool  # a CSV statement: its rows are its lines less the header and the total line


def output_file(entry: dict[str, Any]) -> str | None:
    """Where a manifest's output entry lies in a view (table/period=P/...), or None when it is no view
    file (the rejects of a failed run). Manifests before `file` recorded only the published path."""
    if isinstance(entry.get("file"), str):
        return str(entry["file"])
    parts = Path(str(entry.get("path", ""))).parts
    for i in range(len(parts) - 2, -1, -1):  # the last table/period= pair: the store's own path may hold anything
        if parts[i] in storemod.ALL_TABLES and parts[i + 1].startswith("period="):
            return "/".join(parts[i:])
    return None


def outputs_by_folder(manifest: dict[str, Any]) -> dict[str, list[Output]]:
    """{"table/period=P": [Output ...]} of a run's manifest."""
    folders: dict[str, list[Output]] = {}
    for entry in manifest.get("outputs") or []:
        if not isinstance(entry, dict) or (file := output_file(entry)) is None:
            continue
        folder = "/".join(file.split("/")[:2])
        statement = str(entry.get("table", "")).startswith("statements/")
        folders.setdefault(folder, []).append(
            Output(file, entry.get("rows"), entry.get("bytes"), entry.get("sha256"), statement)
        )
    return folders


class Manifests:
    """The store's run manifests, each read once; a damaged one is kept as its Problem."""

    def __init__(self, store: Path):
        self.store = Path(store)
        self._read: dict[str, dict[str, Any] | Problem] = {}

    def get(self, run_id: str) -> dict[str, Any] | Problem:
        if run_id not in self._read:
            self._read[run_id] = read_manifest(self.store, run_id)
        return self._read[run_id]


def read_manifest(store: Path, run_id: str) -> dict[str, Any] | Problem:
    """A run's manifest, or the Problem that keeps it from being read."""
    path = Path(store) / "runs" / run_id / "manifest.json"
    where = f"runs/{run_id}/manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return Problem(where, "missing")
    except (OSError, ValueError) as exc:
        return Problem(where, f"unreadable ({_first_line(exc)})")
    if not isinstance(manifest, dict):
        return Problem(where, "unreadable (not a JSON object)")
    return manifest


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


@dataclass
class Checker:
    """Checks views of one store against the manifests of the runs that produced their tables."""

    store: Path
    deep: bool = False  # also rows and sha256 of every file, and files no manifest lists
    manifests: Manifests = field(init=False)
    hashes: dict[tuple[int, int, int, int], str] = field(default_factory=dict)  # hard links hashed once
    files: int = 0

    def __post_init__(self) -> None:
        self.store = Path(self.store)
        self.manifests = Manifests(self.store)

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.store))
        except ValueError:
            return str(path)

    def view(
        self,
        view: Path,
        *,
        tables: tuple[str, ...] | None = None,
        period: str | None = None,
        skip: frozenset[tuple[str, str]] = frozenset(),
        require_provenance: bool = True,
    ) -> list[Problem]:
        """Problems of one view (or of some of its tables, of one period), in path order."""
        if not view.is_dir():
            return [Problem(self.rel(view), "missing")]
        path = view / storemod.PROVENANCE
        if not path.exists():
            return [Problem(self.rel(path), "missing")] if require_provenance else []
        try:
            provenance = storemod.read_provenance(view)
        except StoreDamaged as exc:
            return [Problem(self.rel(path), f"unreadable ({_first_line(exc.__cause__ or exc)})")]
        problems: list[Problem] = []
        for table, by_period in sorted(provenance.items()):
            if tables is not None and table not in tables:
                continue
            for key, run_id in sorted(by_period.items()):
                month = key.split("=", 1)[-1]
                if (period is not None and month != period) or (table, month) in skip:
                    continue
                problems += self._folder(view, table, key, str(run_id))
        if self.deep and tables is None and period is None:
            for folder in sorted(p for t in view.iterdir() if t.is_dir() for p in t.iterdir()):
                if folder.name not in provenance.get(folder.parent.name, {}):
                    what = f"not in the view's {storemod.PROVENANCE} (not published)"
                    problems.append(Problem(self.rel(folder), what))
        return sorted(problems)

    def _folder(self, view: Path, table: str, key: str, run_id: str) -> list[Problem]:
        month = key.split("=", 1)[-1]
        what = f"{table} of {month}, written by run {run_id}"
        manifest = self.manifests.get(run_id)
        if isinstance(manifest, Problem):
            return [Problem(manifest.where, f"{manifest.what}: the manifest of the run that wrote {table} of {month}")]
        folder = view / table / key
        if not folder.is_dir():
            return [Problem(self.rel(folder), f"missing ({what})")]
        expected = outputs_by_folder(manifest).get(f"{table}/{key}", [])
        problems = [p for out in expected if (p := self._file(view / out.file, out, what)) is not None]
        if self.deep:
            listed = {view / out.file for out in expected}
            for path in sorted(p for p in folder.rglob("*") if p.is_file() and p not in listed):
                problems.append(Problem(self.rel(path), f"not written by run {run_id} (its manifest does not list it)"))
        return problems

    def _file(self, path: Path, out: Output, what: str) -> Problem | None:
        self.files += 1
        try:
            stat = path.stat()
        except FileNotFoundError:
            return Problem(self.rel(path), f"missing ({what})")
        except OSError as exc:
            return Problem(self.rel(path), f"unreadable ({_first_line(exc)})")
        if out.bytes is not None and stat.st_size != out.bytes:
            sizes = f"{stat.st_size:,} bytes, {out.bytes:,} when written"
            return Problem(self.rel(path), f"{sizes} ({what}): truncated or changed")
        if not self.deep:
            return None
        try:
            rows = _rows(path, out.statement)
            if out.sha256 is not None:
                key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
                if key not in self.hashes:
                    self.hashes[key] = storemod.file_digest(path)[0]
                if self.hashes[key] != out.sha256:
                    return Problem(self.rel(path), f"content changed: sha256 differs from the manifest's ({what})")
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            return Problem(self.rel(path), f"unreadable ({_first_line(exc)}) ({what})")
        if out.rows is not None and rows != out.rows:
            return Problem(self.rel(path), f"{rows:,} rows, {out.rows:,} when written ({what})")
        return None


def _rows(path: Path, statement: bool) -> int:
    if path.suffix == ".parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open(newline="", encoding="utf-8") as handle:
        lines = sum(1 for _ in csv.reader(handle))
    return lines - 2 if statement else lines - 1  # a statement ends with its total line


def hint(store: Path) -> str:
    return f"'carrier-sla verify --store {store}' lists every problem; the README's Recovery section says how to repair"


def require_intact(store: Path, replaced: frozenset[tuple[str, str]] = frozenset()) -> None:
    """StoreDamaged unless the current view is whole (files present, sizes as written) and the manifests
    of the runs it is made of readable. `replaced`: (table, period) the caller is about to replace."""
    store = Path(store)
    link = store / storemod.CURRENT
    if not link.is_symlink():
        if link.exists():
            raise StoreDamaged(str(store), [f"{storemod.CURRENT} is not a link to a view"], hint(store))
        return  # nothing published yet
    view = storemod.view_root(store)
    if not view.is_dir():
        problem = f"{storemod.CURRENT} points to {os.readlink(link)}, which does not exist"
        raise StoreDamaged(str(store), [problem], hint(store))
    problems = Checker(store).view(view, skip=replaced)
    if problems:
        raise StoreDamaged(str(store), [f"current view: {p}" for p in problems], hint(store))


def require_period(view: Path, period: str, tables: tuple[str, ...] | None = None) -> None:
    """StoreDamaged when a file the view's runs wrote for `period` (of `tables`, default all) is missing
    or has another size than when written; views without provenance (hand-made) are taken as they are."""
    view = Path(view)
    store = storemod.store_of(view)
    if store == view:
        return
    problems = Checker(store).view(view, tables=tables, period=period, require_provenance=False)
    if problems:
        raise StoreDamaged(str(store), [str(p) for p in problems], hint(store))


def refuse_inside(out: Path, *stores: Path, option: str = "--out") -> None:
    """UsageError when `out` is a store or lies inside one: files written there would be taken for
    published tables or runs, and break later reads and runs."""
    target = Path(out).resolve()
    for store in stores:
        root = Path(store).resolve()
        if target.is_relative_to(root):
            raise UsageError(
                f"{option} {out} is inside the store {store}: nothing is ever written into a store; choose a "
                "folder outside it"
            )


@dataclass
class Verification:
    """What verify_store found."""

    store: Path
    problems: list[Problem]
    notes: list[str]
    runs: int
    views: int
    files: int
    current: str | None  # the run whose view is current
    intact: list[str]  # runs whose published views have no problem, oldest first


def verify_store(store: Path) -> Verification:
    """Check every run's manifest, every published view against the manifests, and the links."""
    store = Path(store)
    if not store.is_dir() or not ((store / "runs").is_dir() or (store / storemod.CURRENT).is_symlink()):
        raise UsageError(f"{store}: no such store")
    checker = Checker(store, deep=True)
    problems: list[Problem] = []
    notes: list[str] = []
    runs = views = 0
    intact = []
    entries = sorted((store / "runs").iterdir()) if (store / "runs").is_dir() else []
    for entry in entries:
        if not entry.is_dir():
            notes.append(f"runs/{entry.name}: not a run folder (ignored by runs and history)")
            continue
        runs += 1
        manifest = checker.manifests.get(entry.name)
        if isinstance(manifest, Problem):
            problems.append(manifest)
            continue
        status, view = manifest.get("status"), entry / storemod.VIEW
        if status in ("running", "publishing"):
            notes.append(f"run {entry.name} is {status}: still going, or killed (the next run recovers it)")
        elif status == "completed":
            views += 1
            found = checker.view(view) if view.is_dir() else [Problem(checker.rel(view), "missing (a published view)")]
            problems += found
            if not found:
                intact.append(entry.name)
        elif view.is_dir():
            notes.append(f"run {entry.name} is {status} and left an unpublished view (removable)")
    current = _check_links(store, checker, problems)
    return Verification(store, problems, notes, runs, views, checker.files, current, intact)


def _check_links(store: Path, checker: Checker, problems: list[Problem]) -> str | None:
    """STORE/current and the table links; returns the run whose view is current."""
    link = store / storemod.CURRENT
    current = None
    if link.is_symlink():
        view = storemod.view_root(store)
        current = view.parent.name
        if not view.is_dir():
            problems.append(Problem(storemod.CURRENT, f"points to {os.readlink(link)}, which does not exist"))
        else:
            manifest = checker.manifests.get(current)
            status = manifest.get("status") if isinstance(manifest, dict) else None
            if isinstance(manifest, dict) and status not in ("completed", "publishing"):
                problems.append(Problem(storemod.CURRENT, f"points to the view of run {current}, which is {status}"))
    elif link.exists():
        problems.append(Problem(storemod.CURRENT, "not a link to a view"))
    for table in storemod.ALL_TABLES if link.is_symlink() else ():
        path = store / table
        if path.is_symlink():
            if os.readlink(path) != f"{storemod.CURRENT}/{table}":
                problems.append(Problem(table, f"links to {os.readlink(path)}, not {storemod.CURRENT}/{table}"))
        elif path.exists():
            problems.append(Problem(table, f"not a link to {storemod.CURRENT}/{table}"))
        else:
            problems.append(Problem(table, f"missing link to {storemod.CURRENT}/{table} (the next run re-creates it)"))
    return current


def format_verification(v: Verification) -> str:
    lines = [
        f"store {v.store}: {v.runs} runs, {v.views} published views, {v.files:,} files checked "
        "(presence, bytes, rows, sha256)"
    ]
    if v.problems:
        lines.append(f"{len(v.problems)} problem(s):")
        lines += [f"  {p}" for p in sorted(set(v.problems))]
    else:
        lines.append("no problem found")
    if v.notes:
        lines.append("notes:")
        lines += [f"  {n}" for n in v.notes]
    if v.current is not None and v.problems:
        state = "intact" if v.current in v.intact else "damaged"
        lines.append(f"current view: run {v.current}'s, {state}")
        if state == "damaged":
            latest = v.intact[-1] if v.intact else None
            lines.append(
                f"latest intact view: run {latest}'s (runs/{latest}/view)"
                if latest
                else "no intact view left: restore the store from a backup, or run its months again into a new store"
            )
        lines.append("see the README's 'Recovery' section for how to repair each problem")
    return "\n".join(lines)
