"""Duplicate-id detection on exact integer keys agrees with a plain reading of the rule."""

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from carrier_sla.inputs import keys
from carrier_sla.inputs.keys import duplicate_mask, string_codes


def reference(values):
    seen, out = set(), []
    for v in values:
        out.append(v is not None and v in seen)
        if v is not None:
            seen.add(v)
    return out


short_or_long = st.one_of(
    st.none(), st.text(alphabet="ab\x00é", max_size=3), st.text(alphabet="xy", min_size=14, max_size=18)
)


@given(st.lists(short_or_long, max_size=60))
def test_every_copy_after_the_first_is_a_duplicate(values):
    """Copies after the first (in order) are flagged, nulls never are, for short, long and NUL-holding strings."""
    assert duplicate_mask(pa.array(values, pa.string())).tolist() == reference(values)


@given(st.lists(short_or_long, max_size=60), st.integers(min_value=1, max_value=3))
def test_hash_collisions_never_make_a_copy(values, buckets):
    """Strings are first compared by hash; with hashes forced to collide (1-3 values for all of
    them), the exact comparison still flags copies of the same string only."""
    arr = pa.array(values, pa.string())
    forced = keys.hash64(arr) % np.uint64(buckets)
    assert duplicate_mask(arr, forced).tolist() == reference(values)


def test_fixed_width_ids_take_the_same_answer_as_mixed_widths():
    """The fixed-width fast path and the general path give the same flags."""
    fixed = [f"O{i % 7:09d}" for i in range(50)]
    assert duplicate_mask(pa.array(fixed)).tolist() == reference(fixed)
    sliced = pa.array(["zz", *fixed])[1:]  # a non-zero array offset
    assert duplicate_mask(sliced).tolist() == reference(fixed)


def _same_partition(codes, values):
    """codes[i] == codes[j] exactly where values[i] == values[j]; -1 exactly for nulls."""
    assert [c == -1 for c in codes] == [v is None for v in values]
    seen = {}
    for c, v in zip(codes, values, strict=True):
        if v is not None:
            assert seen.setdefault(v, c) == c
    assert len(set(seen.values())) == len(seen)


@given(st.lists(short_or_long, max_size=60))
def test_string_codes_are_equal_exactly_where_the_strings_are(values):
    """Codes (sorted mix of exact words, or dictionary encoding for long strings) partition the strings exactly."""
    _same_partition(string_codes(pa.array(values, pa.string())).tolist(), values)


def test_string_codes_fall_back_when_two_different_strings_share_a_mix(monkeypatch):
    """A 64-bit mix collision between different strings is caught on the exact words: dictionary encoding then."""
    from carrier_sla.inputs import keys

    monkeypatch.setattr(keys, "_mix", lambda hi, lo: np.zeros(len(hi), dtype=np.uint64))
    values = ["C1", "C2", None, "C1", "C3", "C2"]
    codes = string_codes(pa.array(values, pa.string())).tolist()
    _same_partition(codes, values)
    assert codes == [0, 1, -1, 0, 2, 1]  # dictionary encoding numbers in order of first appearance


def test_fixed_width_ids_with_nulls_take_the_same_answer():
    """Strings of one width with nulls between them (nulls take no bytes) use the one-reshape path: same flags and codes."""
    values = [None if i % 5 == 0 else f"C{i % 7:03d}" for i in range(40)]
    assert duplicate_mask(pa.array(values, pa.string())).tolist() == reference(values)
    _same_partition(string_codes(pa.array(values, pa.string())).tolist(), values)
    sliced = pa.array(["xx", *values], pa.string())[1:]  # an array with an offset
    assert duplicate_mask(sliced).tolist() == reference(values)


def test_hash64_depends_on_a_strings_own_bytes_only():
    """The partition of a record must not depend on the other strings of its batch: the same
    string hashes alike in a fixed-width array, a mixed-width one, a slice, or alone."""
    mixed = pa.array(["CKT000000001", "a", None, "", "CKT000000001", "x" * 40, "a\x00", "é"])
    hashed = keys.hash64(mixed)
    for i in range(len(mixed)):
        for j in range(i + 1, len(mixed) + 1):
            np.testing.assert_array_equal(keys.hash64(mixed.slice(i, j - i)), hashed[i:j])
    fixed = keys.hash64(pa.array(["CKT000000001", "CKT000000002"]))
    assert fixed[0] == hashed[0] == hashed[4] and fixed[1] != fixed[0]
    with_nulls = keys.hash64(pa.array([None, "CKT000000001", None, "CKT000000002"]))  # one width, nulls
    assert with_nulls.tolist() == [0, fixed[0], 0, fixed[1]]
    assert keys.hash64(pa.array(["xCKT000000002", None, "CKT000000001"])[1:]).tolist() == [0, fixed[0]]
    assert hashed[2] == 0  # null
    assert len({int(h) for h in hashed[[0, 1, 3, 5, 6, 7]]}) == 6  # "a" and "a\0" differ by length
    spread = keys.hash64(pa.array([f"C{i:08d}" for i in range(70_000)])) % np.uint64(7)
    assert np.bincount(spread.astype(np.int64)).min() > 9_000  # about 10,000 each


def test_a_dictionary_column_hashes_as_its_text_and_rows_hash_by_every_field():
    """A code column read from Parquet as a dictionary hashes like the same text from CSV (a row's partition must
    not depend on its file's format), and a row's hash over several fields changes with any of them."""
    text = pa.array(["CLEC01", None, "ILEC", "CLEC01", "CLEC02"])
    coded = text.dictionary_encode()
    assert pa.types.is_dictionary(coded.type)
    np.testing.assert_array_equal(keys.hash64(coded), keys.hash64(text))
    np.testing.assert_array_equal(keys.hash64(coded.slice(2, 3)), keys.hash64(text)[2:])
    empty = pa.DictionaryArray.from_arrays(pa.array([None, None], pa.int32()), pa.array([], pa.string()))
    assert keys.hash64(empty).tolist() == [0, 0]
    circuits = pa.array(["C1", "C1", "C1", "C1", "C1"])
    rows = keys.hash64_rows([coded, circuits])
    np.testing.assert_array_equal(rows, keys.hash64_rows([text, circuits]))
    assert rows[0] == rows[3]  # CLEC01 on C1 twice
    assert len({int(rows[0]), int(rows[2]), int(rows[4])}) == 3  # another carrier on C1, CLEC02 on C1
    assert rows[0] != keys.hash64_rows([pa.array(["CLEC01"]), pa.array(["C2"])])[0]  # CLEC01 on C2
    np.testing.assert_array_equal(keys.hash64_rows([circuits]), keys.hash64(circuits))  # one field: its hash64
