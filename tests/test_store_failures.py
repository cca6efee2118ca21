"""A store that cannot be written: a full disk, a read-only store. Exit 5 with one readable line (a
traceback only with --debug), the run marked failed with its reason wherever its manifest can be
written, nothing published. One hand-made month (a handful of orders) per test."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from carrier_sla.cli.main import main
from carrier_sla.store import layout as storemod
from tests.conftest import write_inputs

PERIOD = "2026-10"


def cli_run(store: Path, data: Path, *extra: str) -> list[str]:
    args = ["run", "--plan", "example-qc", "--data", str(data), "--period", PERIOD, "--out", str(store)]
    # the data have no lines in service: --allow-empty lets the month run without them (MR-8 no_activity)
    return [*args, "--quiet", "--max-reject-rate", "1", "--allow-empty", *extra]


@pytest.fixture
def published(tmp_path):
    """(store, data): one month published."""
    data = write_inputs(tmp_path / "data", orders=[{} for _ in range(5)], troubles=[{}])
    store = tmp_path / "store"
    assert main(cli_run(store, data)) == 0
    return store, data


def snapshot(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*.parquet"))}


@pytest.fixture
def full_disk(monkeypatch, published):
    """A disk that fills up: the run's second Parquet file finds no space, and no file (a manifest
    neither) can be written while the run's unpublished view still holds its first."""
    store, _ = published
    before = {p.name for p in (store / "runs").iterdir()}
    real_write, real_manifest = storemod.write_parquet, storemod.write_manifest
    written = []

    def staged() -> bool:
        return any(any((p / "view").rglob("*.parquet")) for p in (store / "runs").iterdir() if p.name not in before)

    def write_parquet(path, table, metadata):
        if written:
            raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
        written.append(path)
        return real_write(path, table, metadata)

    def write_manifest(out, run_id, manifest):
        if staged():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / "runs" / run_id / "manifest.json.tmp"))
        return real_manifest(out, run_id, manifest)

    monkeypatch.setattr(storemod, "write_parquet", write_parquet)
    monkeypatch.setattr(storemod, "write_manifest", write_manifest)
    return before


def test_a_full_disk_fails_the_run_in_one_line_and_marks_it_failed(published, full_disk, monkeypatch, capsys):
    """ENOSPC while writing: exit 5, one line saying the disk is full, no traceback; the run's unpublished
    files are removed first so that its manifest can say `failed` with the reason (not left `running` and
    later taken for a killed run); the published view is unchanged."""
    store, data = published
    before = snapshot(store)
    assert main(cli_run(store, data)) == 5
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "no space left" in lines[0], err
    (run,) = [p for p in (store / "runs").iterdir() if p.name not in full_disk]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["exit_code"] == 5 and "no space left" in manifest["error"]
    assert not (run / "view").exists() and not (run / "manifest.json.tmp").exists()
    assert snapshot(store) == before
    monkeypatch.undo()  # space again: the next run succeeds and leaves the failed run failed
    assert main(cli_run(store, data)) == 0
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"


def test_debug_prints_the_traceback(published, full_disk, capsys):
    """--debug (before or after the command) adds the traceback to the same exit code."""
    store, data = published
    for args in (["--debug", *cli_run(store, data)], [*cli_run(store, data), "--debug"]):
        assert main(args) == 5
        err = capsys.readouterr().err
        assert "Traceback" in err and "No space left on device" in err
        assert err.strip().splitlines()[-1].startswith("carrier-sla: store error: cannot write to the store")


def test_a_store_whose_runs_folder_is_read_only_fails_in_one_line(published, monkeypatch, capsys):
    """No folder can be made under STORE/runs (as when it is read-only): exit 5, one line naming the
    permission problem and the path, no traceback, nothing published."""
    store, data = published
    before = snapshot(store)
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.is_relative_to(store / "runs") and not self.exists():
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert main(cli_run(store, data)) == 5
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "permission denied" in lines[0], err
    assert str(store / "runs") in lines[0]
    assert snapshot(store) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file modes")
def test_a_read_only_store_fails_in_one_line(published, capsys):
    """The store's folders made read-only (chmod): exit 5, one line, no traceback."""
    store, data = published
    folders = [store, *(p for p in store.rglob("*") if p.is_dir() and not p.is_symlink())]
    for folder in folders:
        folder.chmod(0o555)
    try:
        assert main(cli_run(store, data)) == 5
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    finally:
        for folder in folders:
            folder.chmod(0o755)
