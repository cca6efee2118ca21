"""`make bench` counts the CPU of every process a run starts, also those that outlive it (the fork
server Dask's workers are forked from exits just after the run): benchmarks.run adopts them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import subprocess, sys, time
    from benchmarks import run

    run._adopt_orphans()
    # a parent that starts a CPU-bound child and exits at once, leaving it behind
    child = "import time\\nend = time.process_time() + 0.4\\nwhile time.process_time() < end: pass"
    parent = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {child!r}])"
    subprocess.run([sys.executable, "-c", parent], check=True)
    print(run._reap_orphans())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adopting orphans is Linux's prctl")
def test_the_cpu_of_a_process_left_behind_by_the_run_is_counted():
    """In a process of its own: adopting orphans is for the life of the process."""
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert float(out.stdout.strip()) >= 0.4
