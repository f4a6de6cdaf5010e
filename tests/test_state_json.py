"""The state file and the trace are JSON written without the json module, by one encoder
(shrinkd.jsontext.to_json): whatever they hold, json.loads reads back exactly what was written."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shrinkd.jsontext import to_json

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
    # Anything else is its text, as journald gets it; keys are text.
    assert json.loads(to_json({"s": {1}, 2: Path("/run/x"), "e": ValueError("bad")})) == {"s": "{1}", "2": "/run/x", "e": "bad"}


@given(st.text(alphabet=st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF), min_size=1) | st.text())
def test_a_lone_surrogate_is_escaped_and_the_text_encodes_to_utf8(text: str) -> None:
    # A file name read with surrogateescape holds lone surrogates: the line must still be UTF-8.
    written = to_json([text, {text: 1}])
    assert json.loads(written.encode("utf-8").decode("utf-8")) == [text, {text: 1}]


def test_control_characters_and_quotes_are_escaped() -> None:
    assert to_json('a"b\\c\n\x01\udcff') == '"a\\"b\\\\c\\n\\u0001\\udcff"'

