"""The daemon's state file is JSON written without the json module (shrinkd.events.to_json):
whatever the state holds, json.loads reads back exactly what was written."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shrinkd.events import to_json

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5), max_leaves=30
)


@given(values)
def test_json_reads_back_what_was_written(value: Any) -> None:
    assert json.loads(to_json(value)) == value


@given(st.text())
def test_strings_are_escaped_as_the_json_module_would_read_them(text: str) -> None:
    written = to_json({text: [text]})
    assert json.loads(written) == {text: [text]}
    assert "\n" not in written and "\r" not in written


def test_what_json_has_no_word_for() -> None:
    assert to_json({"a": math.inf, "b": -math.inf, "c": math.nan, "d": (1, 2.5)}) == '{"a":null,"b":null,"c":null,"d":[1,2.5]}'
    with pytest.raises(TypeError, match="not JSON: set"):
        to_json({1, 2})
