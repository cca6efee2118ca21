"""Duplicate-id detection on exact integer keys agrees with a plain reading of the rule."""

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from carrier_sla.keys import duplicate_mask


def reference(values):
    seen, out = set(), []
    for v in values:
        out.append(v is not None and v in seen)
        if v is not None:
            seen.add(v)
    return out


short_or_long = st.one_of(st.none(), st.text(alphabet="ab\x00é", max_size=3), st.text(alphabet="xy", min_size=14, max_size=18))


@given(st.lists(short_or_long, max_size=60))
def test_every_copy_after_the_first_is_a_duplicate(values):
    """Copies after the first (in order) are flagged, nulls never are, for short, long and NUL-holding strings."""
    assert duplicate_mask(pa.array(values, pa.string())).tolist() == reference(values)


def test_fixed_width_ids_take_the_same_answer_as_mixed_widths():
    """The fixed-width fast path and the general path give the same flags."""
    fixed = [f"O{i % 7:09d}" for i in range(50)]
    assert duplicate_mask(pa.array(fixed)).tolist() == reference(fixed)
    sliced = pa.array(["zz", *fixed])[1:]  # a non-zero array offset
    assert duplicate_mask(sliced).tolist() == reference(fixed)

