"""Plan loading: bundled ids and paths, JSON and YAML, every problem at once with its JSON
pointer, and load/dump round-trips."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json

import pytest
import yaml
from conftest import example_document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carrier_sla.errors import PlanError, PlanProblem
from carrier_sla.plan.load import PLANS_DIR, bundled_plan_ids, dump_plan, load_plan, plan_from_document


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
    """Duplicate codes, bad analogs, a holiday under the wrong year and ill-shaped measures are reported together."""
    doc = example_document()
    doc["products"][0]["retail_analog"] = "ds1"  # a retail product with an analog
    doc["products"][4]["retail_analog"] = None  # a CLEC product without one
    doc["products"][5]["retail_analog"] = "ubl_2w"  # an analog that is not retail
    doc["products"].append(dict(doc["products"][1]))  # ds1 twice
    doc["states"].append({"code": "CO", "time_zone": "America/Denver"})  # CO twice
    doc["states"][2]["holidays"] = {"2026": ["2027-01-01"]}
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
        "/states/2/holidays/2026/0",
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
        "holidays": st.lists(
            st.tuples(st.dates(dt.date(1995, 1, 1), dt.date(2060, 12, 31)), st.booleans()),
            max_size=6,
            unique_by=lambda x: x[0],
        ),
        "window": st.one_of(
            st.floats(min_value=0.5, max_value=2000, allow_nan=False).map(lambda h: ("window_hours", h)),
            st.integers(min_value=1, max_value=400).map(lambda d: ("window_days", d)),
        ),
        "match_on": st.sampled_from(["circuit_id", ["circuit_id"], ["carrier_id", "circuit_id"]]),
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
    listed: dict[str, list] = {}
    for day, named in change["holidays"]:  # a date as text or with a name
        listed.setdefault(str(day.year), []).append(
            {"date": day.isoformat(), "name": "h"} if named else day.isoformat()
        )
    doc["calendar"]["holidays"] = listed
    del doc["measures"][3]["value"]["window_days"]
    doc["measures"][3]["value"][change["window"][0]] = change["window"][1]
    doc["measures"][3]["value"]["match_on"] = change["match_on"]
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
    assert again.states[0].holidays.dates == tuple(sorted(day for day, _ in change["holidays"]))
    op5 = again.measure("OP-5").value
    assert getattr(op5, change["window"][0]) == change["window"][1]
    assert op5.match_on == ((change["match_on"],) if isinstance(change["match_on"], str) else tuple(change["match_on"]))


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
  holidays: {2025: [], 2026: [2026-12-24, {date: 2026-12-25, name: Christmas Day}]}
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
    """A YAML plan may write dates and years unquoted (2020-01-01, 2026:): they are read as the ISO text and
    the year keys the schema expects."""
    path = tmp_path / "tiny.yml"
    path.write_text(HAND_WRITTEN_YAML)
    plan = load_plan(path)
    assert plan.effective_from.isoformat() == "2020-01-01"
    assert [d.isoformat() for d in plan.states[0].holidays.dates] == ["2026-12-24", "2026-12-25"]
    assert plan.states[0].holidays.listed_years == (2025, 2026)
    assert list(dump_plan(plan)["calendar"]["holidays"]) == ["2025", "2026"]
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


# --------------------------------------------------------------- related-record windows and keys


def _related_change(**value):
    """example-qc with OP-5's (measure 3) and MR-7's (measure 6) value fields changed; None deletes one."""
    doc = example_document()
    for i in (3, 6):
        for key, new in value.items():
            if new is None:
                doc["measures"][i]["value"].pop(key, None)
            else:
                doc["measures"][i]["value"][key] = new
    return doc


def test_the_bundled_plans_match_op5_and_mr7_on_carrier_and_circuit_within_30_calendar_days():
    """Both bundled plans count a related trouble within 30 calendar days, of the same carrier on the same circuit."""
    for plan_id in ("example-qc", "example-ca"):
        plan = load_plan(plan_id)
        for measure_id in ("OP-5", "MR-7"):
            value = plan.measure(measure_id).value
            assert (value.window_days, value.window_hours) == (30, None)
            assert value.match_on == ("carrier_id", "circuit_id")


def test_a_single_match_on_field_is_the_list_of_one():
    """match_on given as one name loads as the tuple of that name, equal to the list form."""
    single = plan_from_document(_related_change(match_on="circuit_id"))
    listed = plan_from_document(_related_change(match_on=["circuit_id"]))
    assert single.measure("OP-5").value.match_on == ("circuit_id",)
    assert single.measures == listed.measures


def test_window_hours_and_window_days_are_exclusive_and_one_is_required():
    """Both windows, or neither, is a problem at the value's pointer, for each measure concerned."""
    both = problems_of(_related_change(window_hours=720))
    assert [str(p) for p in both] == [
        f"/measures/{i}/value: give exactly one of window_hours, window_days (found: window_hours, window_days)"
        for i in (3, 6)
    ]
    neither = problems_of(_related_change(window_days=None))
    assert [str(p) for p in neither] == [
        f"/measures/{i}/value: give exactly one of window_hours, window_days (found: none)" for i in (3, 6)
    ]
    assert (
        plan_from_document(_related_change(window_days=None, window_hours=720)).measure("MR-7").value.window_hours
        == 720
    )


@pytest.mark.parametrize(
    ("days", "message"),
    [
        (0, "0 is less than the minimum of 1"),
        (2.5, "2.5 is not of type 'integer'"),
        ("30", "'30' is not of type 'integer'"),
    ],
)
def test_a_bad_window_days_is_reported_at_its_pointer(days, message):
    """window_days is a whole number of days, at least 1."""
    problems = problems_of(_related_change(window_days=days))
    assert [str(p) for p in problems] == [f"/measures/{i}/value/window_days: {message}" for i in (3, 6)]


def test_bad_match_on_lists_are_reported_at_their_pointers():
    """An empty list, a repeated field or a field that is not text is a problem at match_on's pointer."""
    assert [str(p) for p in problems_of(_related_change(match_on=[]))] == [
        f"/measures/{i}/value/match_on: [] should be non-empty" for i in (3, 6)
    ]
    repeated = problems_of(_related_change(match_on=["circuit_id", "circuit_id"]))
    assert pointers(repeated) == ["/measures/3/value/match_on", "/measures/6/value/match_on"]
    assert "non-unique elements" in repeated[0].message
    assert [str(p) for p in problems_of(_related_change(match_on=["circuit_id", 7]))] == [
        f"/measures/{i}/value/match_on/1: 7 is not of type 'string'" for i in (3, 6)
    ]


def test_each_match_on_field_must_be_a_text_field_of_both_record_types():
    """A listed field unknown to the measure's records or to the related records, or not a text
    or code field, is reported at its own item's pointer."""
    problems = problems_of(_related_change(match_on=["carrier_id", "order_type", "received_at"]))
    messages = {(p.pointer, p.message.split(" (known")[0]) for p in problems}
    assert messages == {
        # OP-5: orders related to troubles; order_type is an order field only
        ("/measures/3/value/match_on/1", "unknown field 'order_type' of troubles"),
        ("/measures/3/value/match_on/2", "field 'received_at' is a timestamp, expected string or code"),
        # MR-7: troubles related to troubles
        ("/measures/6/value/match_on/1", "unknown field 'order_type' of troubles"),
        ("/measures/6/value/match_on/2", "field 'received_at' is a timestamp, expected string or code"),
    }


def test_validate_explains_the_new_options_with_their_pointers(tmp_path, capsys):
    """carrier-sla validate of a plan with a bad window and match field exits 2, naming each pointer."""
    from carrier_sla.cli.main import main

    doc = _related_change(window_hours=720, match_on=["carrier_id", "circuit"])
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    assert main(["validate", "--plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "/measures/3/value: give exactly one of window_hours, window_days (found: window_hours, window_days)" in err
    assert "/measures/6/value/match_on/1: unknown field 'circuit' of troubles" in err
    assert "/measures/3/value/match_on/1: unknown field 'circuit' of orders" in err


# ------------------------------------------------------------------------------ holidays


def test_holiday_list_problems_are_each_reported_with_their_pointer():
    """A date under another year, a date listed twice, a non-date, an entry without a date, a
    key that is not a year: every problem at once, each at its JSON pointer."""
    doc = example_document()
    doc["calendar"]["holidays"] = {
        "2026": [
            "2026-01-01",
            "2027-01-01",
            {"date": "2026-07-03", "name": "Independence Day (observed)"},
            "2026-01-01",
            "2026-02-30",
            {"name": "no date"},
            {"date": "2026-07-04", "when": "always"},
        ],
        "26": [],
    }
    doc["states"][1]["holidays"] = {"2026": [{"date": "2025-12-25", "name": "Christmas Day"}]}
    problems = problems_of(doc)
    messages = {p.pointer: p.message for p in problems}
    assert pointers(problems) == [
        "/calendar/holidays",
        "/calendar/holidays/2026/1",
        "/calendar/holidays/2026/3",
        "/calendar/holidays/2026/4",
        "/calendar/holidays/2026/5",
        "/calendar/holidays/2026/6",
        "/states/1/holidays/2026/0",
    ]
    assert "'26' does not match" in messages["/calendar/holidays"]
    assert messages["/calendar/holidays/2026/1"] == "2027-01-01 is not in 2026: list each date under its own year"
    assert messages["/calendar/holidays/2026/3"] == "2026-01-01 is listed twice"
    assert "'2026-02-30' is not a 'date'" in messages["/calendar/holidays/2026/4"]
    assert "'date' is a required property" in messages["/calendar/holidays/2026/5"]
    assert "'when' was unexpected" in messages["/calendar/holidays/2026/6"]
    assert "2025-12-25 is not in 2026" in messages["/states/1/holidays/2026/0"]


def test_the_old_holiday_form_is_one_problem_telling_to_print_the_list():
    """holidays as country/subdivision/extra_dates (read from the holidays package until now) is one
    problem per place it is used, saying to paste the list `carrier-sla holidays` prints."""
    doc = example_document()
    doc["calendar"]["holidays"] = {"country": "US", "subdivision": None, "extra_dates": ["2026-12-24"]}
    doc["states"][3]["holidays"] = {"country": "US", "subdivision": "UT"}
    problems = problems_of(doc)
    assert pointers(problems) == ["/calendar/holidays", "/states/3/holidays"]
    for problem in problems:
        assert "no longer read" in problem.message
        assert "carrier-sla holidays --country US --years 2020-2035" in problem.message


def test_the_plan_lists_its_holidays_per_year_and_its_hash_covers_them():
    """The bundled plan's holidays are its own list, year by year (names are for the reader); leaving
    out one date gives another plan and another sha256."""
    plan = load_plan("example-qc")
    spec = plan.states[0].holidays
    assert spec.listed_years == tuple(range(2020, 2036))
    assert dict(spec.years)[2026][8].isoformat() == "2026-10-12"  # Columbus Day
    doc = example_document()
    doc["calendar"]["holidays"]["2026"] = [h for h in doc["calendar"]["holidays"]["2026"] if h["date"] != "2026-10-12"]
    worked = plan_from_document(doc)
    assert worked != plan and worked.sha256 != plan_from_document(example_document()).sha256
    assert "2026-10-12" not in {d.isoformat() for d in worked.states[0].holidays.dates}
    assert len(worked.states[0].holidays.dates) == len(spec.dates) - 1


def test_a_state_may_list_its_own_holidays():
    """A state's own list replaces the calendar's for that state only; a year listed empty has no holidays."""
    doc = example_document()
    doc["states"][1]["holidays"] = {"2026": ["2026-03-31"], "2027": []}
    plan = plan_from_document(doc)
    co = next(s for s in plan.states if s.code == "CO")
    az = next(s for s in plan.states if s.code == "AZ")
    assert co.holidays.years == ((2026, (dt.date(2026, 3, 31),)), (2027, ()))
    assert az.holidays.listed_years == tuple(range(2020, 2036))
