"""Plan loading: bundled ids and paths, JSON and YAML, every problem at once with its JSON
pointer, and load/dump round-trips."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json

import pytest
import yaml
from conftest import example_document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carrier_sla.errors import PlanError, PlanProblem
from carrier_sla.plan import PLANS_DIR, bundled_plan_ids, dump_plan, load_plan, plan_from_document


def problems_of(doc) -> list[PlanProblem]:
    with pytest.raises(PlanError) as info:
        plan_from_document(doc)
    return info.value.problems


def pointers(problems: list[PlanProblem]) -> list[str]:
    return [p.pointer for p in problems]


# ------------------------------------------------------------------------------ finding


def test_bundled_plan_loads_by_id_and_by_path_alike():
    """--plan example-qc and the path of the bundled file give equal plans with the file's sha256."""
    by_id = load_plan("example-qc")
    path = PLANS_DIR / "example-qc.json"
    by_path = load_plan(path)
    assert by_id == by_path
    assert (by_id.id, by_id.version) == ("example-qc", "1.0.0")
    assert by_id.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert by_id.source == str(path)
    assert "example-qc" in bundled_plan_ids()


def test_unknown_plan_id_is_a_plan_error_naming_the_bundled_plans():
    """An id that is neither a file nor a bundled plan raises PlanError listing the bundled ids."""
    with pytest.raises(PlanError) as info:
        load_plan("no-such-plan")
    assert info.value.source == "no-such-plan"
    assert len(info.value.problems) == 1
    assert "example-qc" in info.value.problems[0].message


def test_a_file_that_is_not_json_is_a_plan_error(tmp_path):
    """A plan file that does not parse is reported as one problem at the document root."""
    path = tmp_path / "broken.json"
    path.write_text('{"id": "x",')
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert pointers(info.value.problems) == [""]
    assert "not valid JSON" in info.value.problems[0].message


# ------------------------------------------------------------------------------ problems


def test_every_schema_problem_is_reported_at_once_sorted_with_its_pointer():
    """Several schema violations in one plan are all reported, sorted by JSON pointer."""
    doc = example_document()
    doc["extra"] = 1
    doc["version"] = ""
    doc["states"][1]["code"] = "Colorado"
    doc["calendar"]["order_cutoff"] = "25:00"
    doc["measures"][2]["type"] = "median"
    doc["measures"][5]["direction"] = "sideways"
    del doc["measures"][6]["title"]
    problems = problems_of(doc)
    assert pointers(problems) == [
        "",
        "/calendar/order_cutoff",
        "/measures/2/type",
        "/measures/5/direction",
        "/measures/6",
        "/states/1/code",
        "/version",
    ]
    assert problems == sorted(problems)
    assert "'extra' was unexpected" in problems[0].message
    assert "'title' is a required property" in problems[4].message


def test_every_reference_problem_is_reported_at_once_sorted_with_its_pointer():
    """Unknown products, fields, states, zones and duplicate measure ids are all reported, each with its pointer."""
    doc = example_document()
    doc["products"][3]["retail_analog"] = "pots2"
    doc["states"][0]["time_zone"] = "America/Nowhere"
    doc["measures"][1]["period_by"] = "due_date"
    doc["measures"][2]["value"]["from"] = "nonexistent"
    doc["measures"][3]["standards"][0]["when"] = {"products": ["fiber"], "states": ["TX"]}
    doc["measures"][4]["exclusions"][1]["when"][0]["field"] = "colour"
    doc["measures"][5]["dimensions"][0]["products"] = ["pots"]
    doc["measures"][6]["id"] = "MR-5"
    problems = problems_of(doc)
    assert pointers(problems) == [
        "/measures/1/period_by",
        "/measures/2/value/from",
        "/measures/3/standards/0/when/products/0",
        "/measures/3/standards/0/when/states/0",
        "/measures/4/exclusions/1/when/0/field",
        "/measures/4/id",
        "/measures/5/dimensions/0/products/0",
        "/measures/6/id",
        "/products/3/retail_analog",
        "/remedies/measures/MR-7",  # its measure was renamed
        "/states/0/time_zone",
    ]
    messages = dict(zip(pointers(problems), (p.message for p in problems), strict=True))
    assert "'due_date' is a date, expected timestamp" in messages["/measures/1/period_by"]
    assert "unknown field 'nonexistent' of orders" in messages["/measures/2/value/from"]
    assert "unknown product 'fiber'" in messages["/measures/3/standards/0/when/products/0"]
    assert "unknown retail product 'pots2'" in messages["/products/3/retail_analog"]
    assert "duplicate measure id 'MR-5'" in messages["/measures/6/id"]


def test_catalogue_and_measure_shape_problems_are_all_reported():
    """Duplicate codes, bad analogs, unknown holiday calendars and ill-shaped measures are reported together."""
    doc = example_document()
    doc["products"][0]["retail_analog"] = "ds1"  # a retail product with an analog
    doc["products"][4]["retail_analog"] = None  # a CLEC product without one
    doc["products"][5]["retail_analog"] = "ubl_2w"  # an analog that is not retail
    doc["products"].append(dict(doc["products"][1]))  # ds1 twice
    doc["states"].append({"code": "CO", "time_zone": "America/Denver"})  # CO twice
    doc["states"][2]["holidays"] = {"country": "XX"}
    doc["measures"][0]["standards"][0]["target"] = 120  # a percentage above 100
    doc["measures"][1]["standards"][0]["when"] = {"channel": ["manual"]}  # not a dimension of OP-3
    doc["measures"][2]["value"] = {"kind": "on_or_before", "date": "completed_date", "deadline": "due_date"}
    doc["measures"][6]["rate_base"] = {"records": "lines", "field": "lines_in_service", "per": 100}
    doc["measures"][7]["standards"] = [{"type": "benchmark", "target": 2}]
    problems = problems_of(doc)
    assert pointers(problems) == [
        "/measures/0/standards/0/target",
        "/measures/1/standards/0/when/channel",
        "/measures/2/value",
        "/measures/6/rate_base",
        "/measures/7/standards/0",
        "/products",
        "/products/0/retail_analog",
        "/products/4/retail_analog",
        "/products/5/retail_analog",
        "/states",
        "/states/2/holidays",
    ]
    assert problems == sorted(problems)


def test_a_problem_with_a_condition_field_is_reported_once():
    """An unknown field under an is_true condition is one problem, not one per check applied to it."""
    doc = example_document()
    doc["measures"][0]["exclusions"][0]["when"][0]["field"] = "is_tset"
    problems = problems_of(doc)
    assert pointers(problems) == ["/measures/0/exclusions/0/when/0/field"]
    assert "unknown field 'is_tset'" in problems[0].message


def test_is_true_on_a_field_that_is_not_boolean_is_a_problem():
    """is_true/is_false need a bool field: using one on a code field names the field's type."""
    doc = example_document()
    doc["measures"][1]["exclusions"][1]["when"][0]["field"] = "order_type"
    problems = problems_of(doc)
    assert pointers(problems) == ["/measures/1/exclusions/1/when/0/field"]
    assert "'order_type' is a code, expected bool" in problems[0].message


def test_calendar_and_date_range_problems_are_reported():
    """Business hours ending before they start and an end date before the start date are both reported."""
    doc = example_document()
    doc["calendar"]["business_hours"] = {"start": "17:00", "end": "08:00"}
    doc["effective_to"] = "2019-12-31"
    doc["test_carrier_ids"] = ["ILEC"]
    assert pointers(problems_of(doc)) == ["/calendar/business_hours", "/effective_to", "/test_carrier_ids"]


def test_plan_error_message_lists_every_problem_with_its_pointer():
    """str(PlanError) names the source and one line per problem, pointer first ('/' for the root)."""
    error = PlanError("p.json", [PlanProblem("/b", "second"), PlanProblem("", "root"), PlanProblem("/a", "first")])
    assert pointers(error.problems) == ["", "/a", "/b"]
    assert str(error).splitlines() == ["plan p.json: 3 problem(s)", "  /: root", "  /a: first", "  /b: second"]


def test_load_plan_reports_problems_of_a_file(tmp_path):
    """load_plan of a file with problems raises PlanError whose source is the file path."""
    doc = example_document()
    doc["measures"][2]["value"]["from"] = "nonexistent"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert info.value.source == str(path)
    assert pointers(info.value.problems) == ["/measures/2/value/from"]


# ---------------------------------------------------------------------------- round trip


def test_dump_then_load_gives_an_equal_plan(tmp_path):
    """dump_plan then plan_from_document, or dump to a file then load_plan, gives a plan equal to the original."""
    plan = load_plan("example-qc")
    document = dump_plan(plan)
    assert document == example_document()
    assert plan_from_document(document) == plan
    path = tmp_path / "again.json"
    path.write_text(json.dumps(document, indent=1))
    again = load_plan(path)
    assert again == plan
    assert again.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() != plan.sha256


def test_a_changed_plan_is_not_equal():
    """Equality compares content: a different critical value makes a different plan."""
    doc = example_document()
    doc["statistics"]["critical_values"]["clec"][1]["value"] = 2.0
    assert plan_from_document(doc) != load_plan("example-qc")


def test_dump_does_not_share_state_with_the_plan():
    """Changing a dumped document leaves the plan and a later dump unchanged."""
    plan = load_plan("example-qc")
    document = dump_plan(plan)
    document["measures"][0]["id"] = "changed"
    assert dump_plan(plan)["measures"][0]["id"] == "PO-5"
    assert plan.measures[0].id == "PO-5"


def test_plan_spec_is_frozen_with_tuples():
    """The built plan is immutable: frozen dataclasses holding tuples."""
    plan = load_plan("example-qc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.version = "2"  # type: ignore[misc]
    assert isinstance(plan.measures, tuple) and isinstance(plan.measures[0].exclusions, tuple)
    assert isinstance(plan.measures[1].exclusions[2].when[0].value, tuple)


variations = st.fixed_dictionaries(
    {
        "version": st.text(alphabet="0123456789.abc-", min_size=1, max_size=8),
        "critical_value": st.floats(min_value=0.01, max_value=10, allow_nan=False),
        "target": st.floats(min_value=0, max_value=100, allow_nan=False),
        "interval": st.integers(min_value=0, max_value=30),
        "extra_dates": st.lists(st.dates().map(lambda d: d.isoformat()), max_size=3, unique=True),
        "window": st.floats(min_value=0.5, max_value=2000, allow_nan=False),
        "drop_dimensions": st.booleans(),
    }
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variations)
def test_round_trip_holds_for_plan_variations(change):
    """For varied plan values, dump_plan(plan_from_document(doc)) gives back doc and an equal plan."""
    doc = example_document()
    doc["version"] = change["version"]
    doc["statistics"] = {"parity_method": "modified_z", "critical_value": change["critical_value"]}
    doc["measures"][0]["standards"][0]["target"] = change["target"]
    doc["products"][4]["standard_interval_days"] = change["interval"]
    doc["calendar"]["holidays"]["extra_dates"] = change["extra_dates"]
    doc["measures"][3]["value"]["window_hours"] = change["window"]
    if change["drop_dimensions"]:
        del doc["measures"][2]["dimensions"]
    original = copy.deepcopy(doc)
    plan = plan_from_document(doc)
    assert doc == original  # loading does not change the document
    assert dump_plan(plan) == original
    again = plan_from_document(dump_plan(plan))
    assert again == plan
    assert again.version == change["version"]
    assert again.statistics.critical_value == change["critical_value"]


# ---------------------------------------------------------------------------------- YAML


def test_yaml_plan_loads_equal_to_the_json_plan(tmp_path):
    """The bundled plan written as YAML loads to a plan equal to the JSON one, hashed by its own bytes."""
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(example_document(), sort_keys=False))
    plan = load_plan(path)
    assert plan == load_plan("example-qc")
    assert plan.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert plan.source == str(path)


HAND_WRITTEN_YAML = """\
id: tiny
version: "1"
title: Tiny plan
effective_from: 2020-01-01
effective_to: null
retail_carrier_id: ILEC
calendar:
  business_hours: {start: "08:00", end: "17:00"}
  order_cutoff: "15:00"
  holidays: {country: US, extra_dates: [2026-12-24]}
states:
  - {code: CO, time_zone: America/Denver}
products:
  - {code: pots, family: retail, standard_interval_days: 3}
  - {code: resale_pots, family: resale, standard_interval_days: 3, retail_analog: pots}
statistics: {parity_method: modified_z, critical_value: 1.645}
measures:
  - id: MR-6
    title: Mean time to restore
    records: troubles
    period_by: cleared_at
    type: mean
    direction: lower_better
    exclusions: []
    value: {kind: duration_hours, from: received_at, to: cleared_at}
    standards: [{type: parity}]
"""


def test_hand_written_yaml_with_unquoted_dates_loads(tmp_path):
    """A YAML plan may write dates unquoted (2020-01-01): they are read as the ISO text the schema expects."""
    path = tmp_path / "tiny.yml"
    path.write_text(HAND_WRITTEN_YAML)
    plan = load_plan(path)
    assert plan.effective_from.isoformat() == "2020-01-01"
    assert [d.isoformat() for d in plan.states[0].holidays.extra_dates] == ["2026-12-24"]
    assert dump_plan(plan)["effective_from"] == "2020-01-01"
    assert plan_from_document(dump_plan(plan)) == plan


def test_yaml_with_problems_reports_them_with_pointers(tmp_path):
    """A YAML plan is validated like JSON: its problems carry JSON pointers."""
    path = tmp_path / "tiny.yaml"
    path.write_text(HAND_WRITTEN_YAML.replace("period_by: cleared_at", "period_by: cleared_on"))
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert pointers(info.value.problems) == ["/measures/0/period_by"]


def test_yaml_syntax_error_is_a_plan_error(tmp_path):
    """A YAML file that does not parse is one problem at the root, not a crash."""
    path = tmp_path / "bad.yaml"
    path.write_text("id: [unclosed\n")
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert pointers(info.value.problems) == [""]


def test_a_bad_value_rule_is_reported_at_its_own_field_not_as_a_guess_across_kinds(make_plan):
    """Errors inside a measure's value are those of the branch its kind names, at the field's pointer."""
    from carrier_sla.errors import PlanError

    def change(doc):
        doc["measures"][4]["value"]["at_most"] = -1  # MR-5: duration_hours

    with pytest.raises(PlanError) as info:
        make_plan(change)
    assert [str(p) for p in info.value.problems] == ["/measures/4/value/at_most: -1 is less than the minimum of 0"]


def test_schema_and_reference_problems_are_reported_together(make_plan):
    """A plan breaking the schema in one place and naming an unknown product in another lists both at once."""
    from carrier_sla.errors import PlanError

    def change(doc):
        doc["products"][4]["retail_analog"] = "pots2"
        del doc["measures"][3]["period_by"]

    with pytest.raises(PlanError) as info:
        make_plan(change)
    assert [p.pointer for p in info.value.problems] == ["/measures/3", "/products/4/retail_analog"]


def test_statistics_need_exactly_one_threshold_and_methods_fit_measure_types(make_plan):
    """Two thresholds at once, a method routed to a measure type it cannot test, and an open-ended
    critical-value table not last are each reported with their pointer."""
    from carrier_sla.errors import PlanError

    def change(doc):
        doc["statistics"] = {
            "parity_method": "modified_z",
            "critical_value": 1.645,
            "alpha": 0.05,
            "routing": {"mean": [{"max_clec_n": 30, "method": "fisher_exact"}]},
        }

    with pytest.raises(PlanError) as info:
        make_plan(change)
    pointers = [p.pointer for p in info.value.problems]
    assert pointers == ["/statistics", "/statistics/routing/mean/0/method"]


def test_sequential_monte_carlo_is_a_plan_setting_checked_against_resamples():
    """statistics.permutation.sequential.h becomes Statistics.sequential_h (None when absent); an h above
    resamples and an h below 1 are each reported at /statistics/permutation/sequential/h."""
    doc = example_document()
    doc["statistics"]["permutation"] = {"resamples": 5000, "sequential": {"h": 50}}
    assert plan_from_document(doc).statistics.sequential_h == 50
    del doc["statistics"]["permutation"]["sequential"]
    assert plan_from_document(doc).statistics.sequential_h is None
    for h in (5001, 0):
        doc["statistics"]["permutation"]["sequential"] = {"h": h}
        assert pointers(problems_of(doc)) == ["/statistics/permutation/sequential/h"]
    doc["statistics"]["permutation"]["sequential"] = {}
    assert pointers(problems_of(doc)) == ["/statistics/permutation/sequential"]


def test_the_bundled_sample_size_table_picks_the_critical_value_by_clec_n():
    """example-qc's illustrative table: 1-10 -> 1.04, 11-150 -> 1.645, ..., above 3000 -> 4.3."""
    stats = load_plan("example-qc").statistics
    got = {n: stats.critical_value_for("clec", n) for n in (1, 10, 11, 150, 151, 300, 301, 600, 601, 3000, 3001)}
    assert got == {
        1: 1.04,
        10: 1.04,
        11: 1.645,
        150: 1.645,
        151: 2.0,
        300: 2.0,
        301: 2.7,
        600: 2.7,
        601: 3.7,
        3000: 3.7,
        3001: 4.3,
    }
    assert stats.critical_value_for("clec_aggregate", 12) == 1.645  # the same table serves the aggregate
    assert [stats.method_for(t, 30) for t in ("mean", "proportion", "rate")] == [
        "permutation",
        "fisher_exact",
        "binomial_exact",
    ]
    assert [stats.method_for(t, 31) for t in ("mean", "proportion", "rate")] == ["modified_z"] * 3


def test_the_verdict_options_of_the_statistics_are_checked_with_their_pointers():
    """undefined_statistic, rate_variance and unit_of_measurement: a wrong value or a missing unit for a
    modified_t_log measure is reported at its JSON pointer, every problem at once."""
    doc = json.loads((PLANS_DIR / "example-ca.json").read_text())
    doc["statistics"]["routing"]["undefined_statistic"] = "guess"
    doc["statistics"]["rate_variance"] = "normal"
    op4 = next(i for i, m in enumerate(doc["measures"]) if m["id"] == "OP-4")
    mr6 = next(i for i, m in enumerate(doc["measures"]) if m["id"] == "MR-6")
    del doc["measures"][op4]["unit_of_measurement"]
    doc["measures"][mr6]["unit_of_measurement"] = 0
    problems = problems_of(doc)
    assert pointers(problems) == sorted(
        [
            f"/measures/{op4}",
            f"/measures/{mr6}/unit_of_measurement",
            "/statistics/rate_variance",
            "/statistics/routing/undefined_statistic",
        ]
    )
    messages = dict(zip(pointers(problems), (p.message for p in problems), strict=True))
    assert "unit_of_measurement" in messages[f"/measures/{op4}"]


def test_the_bundled_plans_carry_the_defensible_verdict_settings():
    """Both bundled plans decide undefined statistics by the exact test and use the Poisson rate variance;
    example-qc judges the all-CLEC aggregate at a flat 1.645; example-ca sets each interval measure's unit."""
    for plan_id in ("example-qc", "example-ca"):
        st_ = load_plan(plan_id).statistics
        assert (st_.undefined_statistic, st_.rate_variance) == ("exact_test", "poisson")
    qc = load_plan("example-qc").statistics
    assert dict(qc.critical_values)["clec_aggregate"] == ((None, 1.645),)
    ca = load_plan("example-ca")
    assert {m.id: m.unit_of_measurement for m in ca.measures if m.type == "mean"} == {"OP-4": 1.0, "MR-6": 0.01}
