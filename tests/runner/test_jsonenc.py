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


def test_falls_back_to_the_plain_encoder_if_the_accelerator_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = json.encoder.c_make_encoder  # type: ignore[attr-defined]

    def changed_signature(*args: object) -> object:
        if args[0] is None:  # our call (json's own passes a markers dict)
            raise TypeError("c_make_encoder() takes different arguments now")
        return original(*args)

    monkeypatch.setattr(json.encoder, "c_make_encoder", changed_signature)
    encode = make_encoder(ensure_ascii=False, separators=(",", ":"))
    assert encode({"é": [1, 2.5]}) == '{"é":[1,2.5]}'
