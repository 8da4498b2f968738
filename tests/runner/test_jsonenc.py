"""The reused C encoder writes exactly what ``json.dumps`` writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oqc_trio.runner.jsonenc import make_encoder

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(value=_values)
def test_same_text_as_json_dumps(value: object) -> None:
    for ascii_only, separators in ((False, (",", ":")), (True, (", ", ": "))):
        encode = make_encoder(ensure_ascii=ascii_only, separators=separators)
        assert encode(value) == json.dumps(value, ensure_ascii=ascii_only, separators=separators)


def test_unserialisable_values_are_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        make_encoder(ensure_ascii=True, separators=(",", ":"))({"a": object()})
