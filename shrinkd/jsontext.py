"""JSON text written without the json module: the one encoder of the files shrinkd writes as JSON
(the state file, the trace's lines).

json imports re, and the two cost the long-running daemon about 1.3 MB of resident
memory (bench/idle.py --imports). What is written is dicts (keys written as text),
lists and tuples, str, int, float, bool and None; strings are escaped as RFC 8259
requires, a lone surrogate (a file name read with surrogateescape, say) as its \\u
escape, so the text always encodes to UTF-8 and reads back with json.loads; a float
that is not finite is null (JSON has no word for it); anything else is written as its
text (str()), as journald gets it.
"""

from __future__ import annotations

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_INFINITE = (float("inf"), float("-inf"))
# Text written as it is: printable ASCII but the quote and the backslash. (Not str.isprintable():
# it consults the Unicode database, C code the daemon runs nowhere else; 64 kB of the interpreter's
# pages the daemon would keep resident, bench/idle.py.)
_PLAIN = frozenset(map(chr, range(0x20, 0x7F))) - {'"', "\\"}


def _string(text: str) -> str:
    if _PLAIN.issuperset(text):
        return f'"{text}"'
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " " or "\ud800" <= char <= "\udfff":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def to_json(value: object) -> str:
    """`value` as compact JSON (see the module's docstring for what becomes what)."""
    if value is None or value is True or value is False:
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        # repr() reads back as the same float.
        return repr(value) if value == value and value not in _INFINITE else "null"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(str(key))}:{to_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    return _string(str(value))
