"""Plans at the edges (issue 14): non-finite numbers, repeated keys, unbounded resamples, a week
without business days, amounts beyond the ledger, nesting without end. Each is a plan problem
with its JSON pointer (validate and run exit 2), never a silent change of results or a crash."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from conftest import example_document

from carrier_sla.cli.main import main
from carrier_sla.engine import remedies
from carrier_sla.errors import PlanError
from carrier_sla.plan import document as plan_document
from carrier_sla.plan.load import load_plan, plan_from_document
from carrier_sla.plan.remedy_rules import LEDGER_MAX


def problems_of_file(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(PlanError) as info:
        load_plan(path)
    return [(p.pointer, p.message) for p in info.value.problems]


def validate(capsys, path: Path) -> tuple[int, str]:
    code = main(["validate", "--plan", str(path)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


CRITICAL = "/statistics/critical_values/clec/0/value"


@pytest.mark.parametrize(
    ("text", "shown"),
    [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), ("1e309", "Infinity")],
)
def test_a_non_finite_number_in_plan_json_is_a_problem_at_its_pointer(tmp_path, capsys, text, shown):
    """Python's json reads NaN, Infinity and 1e309 as numbers: a NaN critical value passed validate
    and turned every small parity cell into met. Each is a problem at its pointer; validate exits 2."""
    doc = example_document()
    doc["statistics"]["critical_values"]["clec"][0]["value"] = "@"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc).replace('"@"', text))
    problems = problems_of_file(path)
    assert problems == [
        (CRITICAL, f"{shown} is not a finite number (a plan's numbers are finite; 1e309 overflows to Infinity)")
    ]
    code, err = validate(capsys, path)
    assert code == 2 and f"{CRITICAL}: {shown} is not a finite number" in err


def test_non_finite_numbers_anywhere_in_a_document_are_each_named():
    """A document built in Python (what-if, tests) is checked the same way, every number at once."""
    doc = example_document()
    doc["statistics"]["permutation"]["resamples"] = float("inf")
    doc["measures"][0]["standards"][0]["target"] = float("nan")
    with pytest.raises(PlanError) as info:
        plan_from_document(doc)
    found = {p.pointer for p in info.value.problems if "not a finite number" in p.message}
    assert found == {"/statistics/permutation/resamples", "/measures/0/standards/0/target"}


def test_resamples_have_a_documented_upper_limit(capsys, tmp_path):
    """resamples: 10**15 passed validate and the run hung; above 10,000,000 is a problem, 10,000,000 is fine."""
    doc = example_document()
    doc["statistics"]["permutation"]["resamples"] = 10**15
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    assert problems_of_file(path) == [
        ("/statistics/permutation/resamples", "1000000000000000 is greater than the maximum of 10000000")
    ]
    assert validate(capsys, path)[0] == 2
    doc["statistics"]["permutation"]["resamples"] = 10_000_000
    assert plan_from_document(doc).statistics.resamples == 10_000_000


def test_a_repeated_key_in_plan_json_is_a_problem_naming_the_pointer_and_the_key(tmp_path, capsys):
    """json keeps the last of a repeated key: a plan saying two things at once was read as the second.
    Each repeated key is a problem at its pointer, naming the key and how often it appears."""
    text = json.dumps(example_document())
    text = text.replace('"resamples": 100000', '"resamples": 100000, "resamples": 1000', 1)
    text = text.replace('"id": "example-qc"', '"id": "example-qc", "id": "other", "id": "third"', 1)
    path = tmp_path / "plan.json"
    path.write_text(text)
    assert problems_of_file(path) == [
        ("/id", "key 'id' appears 3 times in this object; JSON keeps only the last: give it once"),
        (
            "/statistics/permutation/resamples",
            "key 'resamples' appears 2 times in this object; JSON keeps only the last: give it once",
        ),
    ]
    assert validate(capsys, path)[0] == 2


def test_a_repeated_key_in_a_yaml_plan_is_a_problem_too(tmp_path):
    """YAML mappings are read with the same rule (PyYAML also keeps the last)."""
    text = yaml.safe_dump(example_document(), sort_keys=False)
    text = text.replace("  weekmask: '1111100'\n", "  weekmask: '1111100'\n  weekmask: '1111110'\n", 1)
    assert "weekmask: '1111110'" in text
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    assert problems_of_file(path) == [
        ("/calendar/weekmask", "key 'weekmask' appears 2 times in this object; JSON keeps only the last: give it once")
    ]


def test_a_week_without_a_business_day_is_a_problem(tmp_path, capsys):
    """weekmask 0000000 crashed the run's calendar: it is a problem at /calendar/weekmask."""
    doc = example_document()
    doc["calendar"]["weekmask"] = "0000000"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    assert problems_of_file(path) == [
        ("/calendar/weekmask", "no business day: at least one day of the week (Monday..Sunday) must be 1")
    ]
    assert validate(capsys, path)[0] == 2


@pytest.mark.parametrize("amount", [1e20, "100000000000000000000", "1000000000000.00"])
def test_an_amount_beyond_the_ledger_is_a_problem_saying_the_limit(amount):
    """A remedy amount of 1e20 passed validate and crashed the run (the ledger is decimal(14,2)):
    amounts and caps above 999,999,999,999.99 are problems saying the limit; the limit itself is fine."""
    doc = example_document()
    doc["remedies"]["tiers"]["tier1"]["amounts"]["high"][0] = amount
    doc["remedies"]["caps"] = {"monthly": {"*": amount}}
    with pytest.raises(PlanError) as info:
        plan_from_document(doc)
    said = "is beyond what the ledger holds (decimal(14,2): at most 999,999,999,999.99)"
    assert [(p.pointer, p.message) for p in info.value.problems] == [
        ("/remedies/caps/monthly/*", f"{amount!r} {said}"),
        ("/remedies/tiers/tier1/amounts/high/0", f"{amount!r} {said}"),
    ]
    doc["remedies"]["tiers"]["tier1"]["amounts"]["high"][0] = "999999999999.99"
    doc["remedies"]["caps"] = {"monthly": {"*": 999999999999.99}}
    assert plan_from_document(doc).remedies is not None


def test_the_ledger_limit_is_that_of_the_ledger_columns():
    """LEDGER_MAX is the largest value of remedies.MONEY, the ledger's decimal type."""
    assert (remedies.MONEY.precision, remedies.MONEY.scale) == (14, 2)
    assert Decimal(10) ** (remedies.MONEY.precision - remedies.MONEY.scale) - Decimal("0.01") == LEDGER_MAX


def test_a_plan_nested_beyond_what_python_reads_is_a_plan_error(tmp_path, capsys):
    """An array nested 100,000 deep crashed the JSON reader (RecursionError): a plan error, exit 2."""
    path = tmp_path / "plan.json"
    path.write_text('{"id": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert problems_of_file(path) == [("", plan_document.TOO_DEEP)]
    code, err = validate(capsys, path)
    assert code == 2 and "nested more than 64 levels deep" in err


@pytest.mark.parametrize("depth", [70, 900])
def test_a_plan_nested_deeper_than_any_plan_is_one_problem_at_its_pointer(depth):
    """A document that parses but nests deeper than MAX_DEPTH (the schema's validator would recurse with
    it) gets one problem where it passes the limit, and no schema check."""
    doc = example_document()
    nested: list = []
    for _ in range(depth):
        nested = [nested]
    doc["measures"][0]["exclusions"][0]["when"][0]["value"] = nested
    with pytest.raises(PlanError) as info:
        plan_from_document(doc)
    pointer = "/measures/0/exclusions/0/when/0/value" + "/0" * (plan_document.MAX_DEPTH - 7)  # value: depth 7
    assert [(p.pointer, p.message) for p in info.value.problems] == [(pointer, plan_document.TOO_DEEP)]


def test_the_bundled_plans_pass_the_document_checks():
    """Neither bundled plan repeats a key, holds a non-finite number or nests too deep."""
    for plan_id in ("example-qc", "example-ca"):
        assert load_plan(plan_id).id == plan_id


def test_text_that_is_not_unicode_is_a_problem_not_a_crash(tmp_path, capsys):
    """A JSON escape of an unpaired surrogate (\\ud800) in the plan's version crashed validate when
    it printed the version (exit 5): a value or key that is not Unicode text is a problem at its pointer."""
    doc = example_document()
    doc["version"] = "1.0\ud800"
    doc["statistics"]["\udfff"] = 1
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))  # ensure_ascii: the file holds the escapes
    problems = problems_of_file(path)
    assert ("/version", "'1.0\\ud800' holds an unpaired surrogate (a \\ud800 escape): not Unicode text") in problems
    assert ("/statistics", "key '\\udfff' holds an unpaired surrogate: not Unicode text") in problems
    assert validate(capsys, path)[0] == 2
