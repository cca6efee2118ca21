"""CPU seconds of judging alone: every measure's `verdicts.judge` on one month's cells and value histograms.

Runs the pipeline once in this process with `verdicts.judge` wrapped to keep its arguments, then judges each
measure again `--repeat` times and prints the least process CPU time (time.process_time: every thread of this
process, not the wall, so other work on the machine matters less), the cells, the methods and the Monte Carlo
draws of each. The pipeline runs with workers=1, in this process, so that every judge call is seen here.

Usage: python -m benchmarks.judge_cpu --data DIR --period YYYY-MM [--plan example-qc] [--repeat 3]
e.g. on a real population: python -m carrier_sla generate --out /tmp/real --period 2026-10 --periods 2
--scale 1000000 --seed 7 --format parquet --files-per-type 4 --clecs 200 --zipf 1.3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from carrier_sla.engine import pipeline, verdicts
from carrier_sla.plan.load import load_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--period", required=True)
    parser.add_argument("--plan", default="example-qc")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    calls = []
    judge = verdicts.judge

    def keep(plan, measure, cells, samples=None, missed_before=lambda cell: False):
        calls.append((plan, measure, cells.copy(), samples, missed_before))
        return judge(plan, measure, cells, samples, missed_before)

    verdicts.judge = keep
    try:
        with tempfile.TemporaryDirectory() as out:
            pipeline.run(load_plan(args.plan), args.data, args.period, Path(out) / "store", workers=1)
    finally:
        verdicts.judge = judge
    total = 0.0
    for plan, measure, cells, samples, missed_before in calls:
        best = float("inf")
        for _ in range(args.repeat):
            fresh = None if samples is None else type(samples)(samples.plan, samples.measure, samples.indexes)
            start = time.process_time()
            judged = judge(plan, measure, cells, fresh, missed_before)
            best = min(best, time.process_time() - start)
        total += best
        methods = judged["method"].value_counts().to_dict()
        monte_carlo = judged["method"] == "permutation_monte_carlo"
        draws = int(judged.loc[monte_carlo, "resamples"].sum())
        print(f"{measure.id:6s} {len(cells):7,d} cells {best:6.2f} CPU s  Monte Carlo draws {draws:>10,d}  {methods}")
    print(f"judging: {total:.2f} CPU s")


if __name__ == "__main__":
    main()
