"""The README's shell examples match a real run of them (see tests/readme_examples.py).

One scenario runs every example block in README order in a scratch folder (about a minute:
the demo's generate and runs, a range run, a restatement); each example is then its own test,
named by its README line. `make readme` rewrites the README's outputs from such a run.
"""

from __future__ import annotations

import re
import shlex

import pytest
import readme_examples as rx

EXAMPLES = [example for block in rx.parse(rx.README.read_text()) for example in block.examples]

# Blocks marked `<!-- not checked: REASON -->`: none; a block added there must be named here.
NOT_CHECKED: list[str] = []


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return rx.run_scenario(rx.README.read_text(), tmp_path_factory.mktemp("readme") / "work")


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[f"README.md:{e.line}" for e in EXAMPLES])
def test_readme_example_matches_a_real_run(scenario, example):
    """The example's command, run in its place in the scenario, prints what the README shows and
    exits with the code its comment gives."""
    outcome = next(o for o in scenario.outcomes if o.example.line == example.line)
    assert outcome.ok, outcome.report() + "\n(make readme rewrites the README from a real run; review its diff)"


@pytest.mark.slow
def test_every_preparation_is_used_and_no_block_is_skipped(scenario):
    """Each file the prose has the reader make is made for a command that names it, and the blocks
    the scenario skips are exactly the ones listed here."""
    assert sorted(scenario.prepared) == sorted(name for name, _ in rx.PREPARATIONS)
    assert [f"README.md:{block.start}" for block in scenario.skipped] == NOT_CHECKED


def test_the_readme_generates_the_demo_data_as_the_makefile_does():
    """The README's `generate` (which the scenario runs) has the Makefile's arguments."""
    makefile = (rx.REPO / "Makefile").read_text()
    variables = rx.makefile_variables()
    recipe = re.search(r"-m carrier_sla (generate .*)$", makefile, re.MULTILINE)
    assert recipe is not None
    expanded = re.sub(r"\$\((\w+)\)", lambda found: variables[found.group(1)], recipe.group(1))
    readme = [e.command for e in EXAMPLES if e.command.startswith("carrier-sla generate")]
    assert [shlex.split(c)[1:] for c in readme] == [shlex.split(expanded)]


# --- the comparison itself, on hand-made outputs ------------------------------------------------


def test_a_cut_line_stands_for_any_lines_and_a_cut_within_a_line_for_any_text():
    expected = ["head", "...", "x = ...;", "[... the rest ...]"]
    assert rx.match(expected, ["head", "x = 1;"], {}) == {}
    assert rx.match(expected, ["head", "a", "b", "x = 22;", "c", "d"], {}) == {}
    assert rx.match(expected, ["head", "x = 1"], {}) is None  # the literal ';' is missing
    assert rx.match(expected, ["heads", "x = 1;"], {}) is None


def test_run_ids_are_names_that_must_stand_for_the_same_run_throughout():
    a, b = "20261125T114304Z-7b7e5a", "20261125T114332Z-9d95f3"
    real_a, real_b = "20261204T213036Z-6d42b3", "20261204T213101Z-bbedfa"
    assert rx.match([f"run {a}, again {a}"], [f"run {real_a}, again {real_a}"], {}) == {a: real_a}
    assert rx.match([f"run {a}, again {a}"], [f"run {real_a}, again {real_b}"], {}) is None
    assert rx.match([f"A {a} B {b}"], [f"A {real_a} B {real_a}"], {}) is None  # two ids for one run
    assert rx.match([f"run {a}"], [f"run {real_b}"], {a: real_a}) is None  # a known id is that run
    assert rx.match([f"run {b}"], [f"run {real_a}"], {a: real_a}) is None  # a new id is a new run


def test_a_runs_times_are_hidden_but_data_times_are_compared():
    """A time within an hour of a run id of the same output is a run time; a record's time is not."""
    run = "20261204T213036Z-6d42b3"
    expected = [f"run {run} (started 2026-12-04 21:30:36)", "completed_at 2026-10-02 10:06:54"]
    later = [f"run {run} (started 2026-12-04 21:30:37)", "completed_at 2026-10-02 10:06:54"]
    assert rx.match(expected, later, {}) == {run: run}
    other_record = [f"run {run} (started 2026-12-04 21:30:36)", "completed_at 2026-10-02 10:06:55"]
    assert rx.match(expected, other_record, {}) is None


def test_scratch_paths_are_read_relative():
    assert rx.localise("manifest /tmp/x/work/out/store/m.json in /tmp/x/work", rx.Path("/tmp/x/work")) == (
        "manifest out/store/m.json in ."
    )


def test_rewriting_keeps_the_cuts_where_they_stand():
    expected = ["total 1", "...", "a,b,...,e", "tail 1", "  ...", "end"]
    actual = ["total 2", "x", "y", "a,b,c,d,e2", "tail 2", "z", "end", "new line"]
    rendered, _ = rx.render(expected, actual)
    assert rendered == ["total 2", "...", "a,b,...,e2", "tail 2", "  ...", "end", "new line"]
    # a line cut after a word keeps its place between two cuts when its numbers change
    expected = ["...", "  verdict: p = 0.4115 >= 0.1492 (the tail area): met; ...", "..."]
    actual = ["Test", "  verdict: p = 0.3591 >= 0.1492 (the tail area): met; no lattice given: Monte Carlo", "Remedies"]
    assert rx.render(expected, actual)[0] == ["...", "  verdict: p = 0.3591 >= 0.1492 (the tail area): met; ...", "..."]


def test_the_exit_code_comes_from_the_commands_comment():
    block = rx.parse("```\n$ carrier-sla validate --plan p   # the same: exit 2\n$ cat f  # a note\nx\n```\n")[0]
    assert [e.exit_code for e in block.examples] == [2, 0]
    assert block.examples[1].expected == ["x"]


def test_a_command_that_runs_until_ctrl_c_is_stopped_after_the_lines_the_readme_shows(tmp_path):
    """A server's first lines are read, then it is stopped; one that stops by itself keeps its exit code."""
    env = {"PATH": "/usr/bin:/bin"}
    code, text = rx._run_until_stopped("bash -c 'echo one; echo two; sleep 600'", tmp_path, env, 1, 0)
    assert (code, text) == (0, "one\n")
    code, text = rx._run_until_stopped("bash -c 'echo failed; exit 2'", tmp_path, env, 1, 0)
    assert (code, text) == (2, "failed\n")
