"""A plan over the years: the versions of one plan, the version in force for each month, and the
version the store recorded for each published month.

`--plan` takes a plan file, the id of a bundled plan, or a folder of versions of one plan: every
`.json`/`.yaml`/`.yml` file directly in it is a version. A folder's versions share the plan `id`,
differ in `version`, and cover a run of months without gaps or overlaps: each begins on the first
day of a month (`effective_from`) and ends on the last day of a month (`effective_to`, the day
before the next version begins); only the last may be open-ended (`effective_to` null). A month is
judged under the one version in force for it. Every problem is reported at once, each at
`FILE#/json/pointer` (e.g. `v2.json#/effective_from`); a gap names the months no version covers.

The version a month was judged under is the plan of the run that published its results
(`runs/RUN_ID/plan.json`, the run's manifest gives its sha256): store.view.recorded_plan reads it back, so a
restatement prices each later month under that month's own version, never the restating run's.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carrier_sla.errors import PlanError, PlanProblem, UsageError
from carrier_sla.plan.load import Plan, _read_document, load_plan
from carrier_sla.plan.periods import check_in_force, check_period

VERSION_SUFFIXES = (".json", ".yaml", ".yml")


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def months_text(first: str, last: str | None) -> str:
    """2026-10, 2026-09..2026-12, or 2026-10.. (open-ended)."""
    if last is None:
        return f"{first}.."
    return first if first == last else f"{first}..{last}"


@dataclass(frozen=True)
class PlanVersions:
    """The versions `--plan` named: one plan file (folder False), or a folder's versions by effective_from."""

    source: str
    versions: tuple[Plan, ...]
    folder: bool = False

    @property
    def id(self) -> str:
        return self.versions[0].id

    @staticmethod
    def months(plan: Plan) -> tuple[str, str | None]:
        """The first and last month a version is in force (last None: open-ended)."""
        return month_of(plan.effective_from), month_of(plan.effective_to) if plan.effective_to else None

    def for_period(self, period: str) -> Plan:
        """The version in force for the month; UsageError (exit 2) when none is."""
        check_period(period)
        if not self.folder:
            check_in_force(self.versions[0], period)
            return self.versions[0]
        for plan in self.versions:
            first, last = self.months(plan)
            if first <= period and (last is None or period <= last):
                return plan
        first, last = self.months(self.versions[0])[0], self.months(self.versions[-1])[1]
        raise UsageError(
            f"no version of plan {self.id} in {self.source} is in force in {period} "
            f"(its versions cover {months_text(first, last)})"
        )


def load_versions(plan: str | Path) -> PlanVersions:
    """`--plan`: a folder of versions, or one plan file or bundled id (PlanError listing every problem)."""
    path = Path(plan)
    if path.is_dir():
        return load_folder(path)
    one = load_plan(plan)
    return PlanVersions(one.source, (one,))


def load_folder(folder: Path) -> PlanVersions:
    """Every version of the folder, validated one by one and together (coverage_problems)."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in VERSION_SUFFIXES)
    if not files:
        raise PlanError(str(folder), [PlanProblem("", "the folder holds no plan file (.json, .yaml, .yml)")])
    plans, problems, documents = [], [], []
    for path in files:
        try:
            plans.append(load_plan(path))
        except PlanError as exc:
            problems += [PlanProblem(f"{path.name}#{p.pointer}", p.message) for p in exc.problems]
        try:
            documents.append((path.name, _read_document(path)[0]))
        except PlanError:
            continue  # unreadable: said above
    problems += coverage_problems(documents)
    if problems:
        raise PlanError(str(folder), problems)
    ordered = tuple(sorted(plans, key=lambda p: p.effective_from))
    return PlanVersions(str(folder), ordered, folder=True)


def _day(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def coverage_problems(documents: list[tuple[str, Any]]) -> list[PlanProblem]:
    """Problems of the versions together: one plan id, distinct versions, whole months, no gap, no
    overlap. `documents`: (file name, parsed document) of every version, as far as each is readable."""
    out: list[PlanProblem] = []
    spans = []  # (from, to or None, name, version)
    ids: dict[str, str] = {}
    versions: dict[str, str] = {}
    for name, doc in documents:
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("id"), str):
            first_id = next(iter(ids.items()), None)
            if first_id and doc["id"] != first_id[0]:
                out.append(
                    PlanProblem(
                        f"{name}#/id",
                        f"plan {doc['id']!r} in a folder of versions of {first_id[0]!r} ({first_id[1]}): "
                        "a folder holds the versions of one plan",
                    )
                )
            ids.setdefault(doc["id"], name)
        if isinstance(doc.get("version"), str):
            if doc["version"] in versions:
                out.append(
                    PlanProblem(f"{name}#/version", f"version {doc['version']} is also {versions[doc['version']]}'s")
                )
            versions.setdefault(doc["version"], name)
        start, end = _day(doc.get("effective_from")), _day(doc.get("effective_to"))
        if start is None or (doc.get("effective_to") is not None and end is None):
            continue  # the version's own problems say what is wrong with its dates
        if start.day != 1:
            out.append(
                PlanProblem(
                    f"{name}#/effective_from",
                    f"{start} is not the first day of a month: a month is judged under one version, so a "
                    "version of a folder begins on a month's first day",
                )
            )
        if end is not None and (end + dt.timedelta(days=1)).day != 1:
            out.append(
                PlanProblem(
                    f"{name}#/effective_to",
                    f"{end} is not the last day of a month: a month is judged under one version, so a "
                    "version of a folder ends on a month's last day",
                )
            )
        spans.append((start, end, name, str(doc.get("version", "?"))))
    spans.sort(key=lambda s: (s[0], s[2]))
    for (start_a, end_a, name_a, ver_a), (start_b, end_b, name_b, ver_b) in itertools.pairwise(spans):
        if end_a is None or end_a >= start_b:
            ends = [d for d in (end_a, end_b) if d is not None]
            overlap = months_text(month_of(start_b), month_of(min(ends)) if ends else None)
            out.append(
                PlanProblem(
                    f"{name_a}#/effective_to",
                    f"version {ver_a} ({name_a}, {start_a}..{end_a or 'open'}) overlaps version {ver_b} ({name_b}, "
                    f"from {start_b}) in {overlap}: each month must be in force under exactly one version",
                )
            )
        elif end_a + dt.timedelta(days=1) < start_b:
            gap_first, gap_last = month_of(end_a + dt.timedelta(days=1)), month_of(start_b - dt.timedelta(days=1))
            out.append(
                PlanProblem(
                    f"{name_a}#/effective_to",
                    f"gap between versions: {ver_a} ({name_a}) ends {end_a} and {ver_b} ({name_b}) begins {start_b}; "
                    f"no version is in force in {months_text(gap_first, gap_last)}",
                )
            )
    return out


def describe(versions: PlanVersions) -> list[str]:
    """One line per version: id, version, dates, months, file, sha256 (for `plans --versions` and validate)."""
    rows = []
    for plan in versions.versions:
        first, last = PlanVersions.months(plan)
        dates = f"{plan.effective_from}..{plan.effective_to or 'open'}"
        rows.append(
            [
                plan.id,
                plan.version,
                dates,
                f"months {months_text(first, last)}",
                Path(plan.source).name,
                f"sha256 {plan.sha256[:12]}",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
