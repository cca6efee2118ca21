"""The Python API (carrier_sla.api, carrier_sla.store.view): `import carrier_sla as csla` is cheap, the README's
example runs as written, and the API raises the errors the CLI maps to exit codes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import carrier_sla as csla
from carrier_sla.cli.main import ERRORS, EXIT_DATA, EXIT_USAGE

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The first python code block of the README's "Python API" section."""
    text = README.read_text()
    section = text[text.index("\n## Python API\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_import_is_cheap_and_keeps_the_version():
    """`import carrier_sla` loads neither pandas nor pyarrow nor the engine; __version__ is there at once."""
    code = (
        "import sys, carrier_sla as c; print(c.__version__); "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy', 'carrier_sla.engine.pipeline') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == csla.__version__ and re.fullmatch(r"\d+\.\d+\.\d+", out[0])
    assert out[1] == "[]"


def test_the_api_names_and_errors():
    """The API's functions and the CLI's errors are attributes of the package; InputError is InputDataError."""
    from carrier_sla import errors
    from carrier_sla.store.view import open_store

    assert csla.open_store is open_store and callable(csla.run) and callable(csla.generate)
    assert csla.InputError is errors.InputDataError and csla.CarrierSlaError is errors.CarrierSlaError
    for name in csla.__all__:
        assert getattr(csla, name) is not None
    with pytest.raises(AttributeError):
        csla.no_such_name  # noqa: B018 - the attribute access is the test
    assert {kind for kind, _, _ in ERRORS} <= {getattr(csla, n) for n in csla.__all__ if n[0].isupper()}


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    """The README's Python API example, run as written in an empty folder: two months published, the ledger read,
    September restated provisionally while the view opened before still reads the first publication."""
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), scope)
    printed = capsys.readouterr().out.splitlines()
    store, september, again = scope["store"], scope["september"], scope["again"]
    assert printed[0] == "['2026-09', '2026-10']"
    assert store.run_ids() == sorted([september.run_id, scope["october"].run_id, again.run_id])
    assert store.run_of("2026-09") == september.run_id  # opened before the restatement: the first publication
    assert csla.open_store(tmp_path / "api-store").run_of("2026-09") == again.run_id
    before, now = scope["before"], scope["now"]
    assert not before["provisional"].any() and now["provisional"].all()
    assert "PlanError plan no-such-plan: 1 problem(s)" in printed and "no such plan file" in printed[-1]
    ledger = scope["ledger"]
    assert len(ledger) and sum(ledger["amount"]) > 0 and set(ledger["currency"]) == {"USD"}


def test_errors_are_the_cli_errors(tmp_path):
    """A missing data folder is an InputError (the CLI's exit 3), a bad period a UsageError (exit 2)."""
    codes = {kind: code for kind, code, _ in ERRORS}
    with pytest.raises(csla.InputError) as missing:
        csla.run(plan="example-qc", data=tmp_path / "nothing", period="2026-10", out=tmp_path / "s")
    assert codes[csla.InputDataError] == EXIT_DATA and "nothing" in str(missing.value)
    with pytest.raises(csla.UsageError, match="2026-13"):
        csla.run(plan="example-qc", data=tmp_path, period="2026-13", out=tmp_path / "s")
    assert codes[csla.UsageError] == EXIT_USAGE
    with pytest.raises(csla.UsageError, match="no such store"):
        csla.open_store(tmp_path / "nowhere")


def test_workers_are_the_clis_workers(tmp_path):
    """`workers` and `scheduler` reach the run as --workers and --scheduler do: 1 runs in-process and gives
    a run; 0 is a UsageError like the CLI's exit 2."""
    from tests.conftest import write_inputs

    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    with pytest.raises(csla.UsageError, match="workers=0"):
        csla.run(plan="example-qc", data=data, period="2026-10", out=tmp_path / "s", workers=0)
    result = csla.run(plan="example-qc", data=data, period="2026-10", out=tmp_path / "s", workers=1, allow_empty=True)
    assert result.period == "2026-10" and len(result.results) > 0
