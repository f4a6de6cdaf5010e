"""Reading configuration files: YAML -> node trees with file and line -> validated plain values.

Strict: an unknown key, a wrong type or an out-of-range value is a
ConfigError naming the file, the line, the key path and what is wrong.
Drop-ins merge into the main file before validation (mappings key by key; a
scalar or a list replaces the earlier one), and every value keeps the file
and line it came from, so errors point at the file that set the value.

Plain values hold only dicts, lists, str, int, float, bool and None: they
pass through marshal from the reader process (configload.load_isolated) and
become the runtime Config in config.from_plain().
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .actions.registry import RECLAIM_NAMES, SPECS
from .config import (
    BUILTIN,
    FAILURE_COUNTERS,
    ORDER_NAMES,
    VMSTAT_COUNTERS,
    WATERMARKS,
    parse_size,
)
from .errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

MAX_ORDER_LIMIT = 15
# The counters whose growth starts the allocation_failures trigger by default: direct
# compaction that found no page, and a huge page that could not be had at a fault.
ALLOCATION_FAILURE_COUNTERS = ("compact_fail", "thp_fault_fallback")

# The default rules. Every other default is in SCHEMA below; DEFAULTS (all of
# them, filled in) is what shrinkd runs with when no file exists.
# config/shrinkd.yaml documents every key and must load to exactly DEFAULTS
# (tests/test_config.py checks it).
DEFAULT_RULES: List[Dict[str, Any]] = [
    {
        "name": "costly-order",
        "zones": ["*"],
        "node": None,
        "orders": ["costly"],
        "min_zone_size": 64 << 20,
        "unusable_index": None,
        "extfrag_index": {"trigger": 0.5, "clear": 0.3},
        "watermark": None,
        "predict": None,
        "reserve": None,
        "sustain": 2,
        "reclaim": True,
    },
    {
        "name": "huge-page",
        "zones": ["*"],
        "node": None,
        "orders": ["huge"],
        "min_zone_size": 64 << 20,
        "unusable_index": {"trigger": 0.6, "clear": 0.4},
        "extfrag_index": None,
        "watermark": None,
        "predict": {"horizon": 300.0},
        "reserve": None,
        "sustain": 3,
        "reclaim": True,
    },
]


# ---------------------------------------------------------------------------
# Source trees: YAML nodes turned into plain values that remember file and line.


class Node:
    """A value read from a file, with where it was read (line is 1-based)."""

    __slots__ = ("line", "source", "value")

    def __init__(self, value: Any, source: str, line: Optional[int]) -> None:
        # value: Dict[str, Tuple[Node, Node]] (key node, value node), List[Node], or a scalar.
        self.value = value
        self.source = source
        self.line = line

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.line, key, problem)


# Limits on what one file may hold, aliases expanded: a real configuration has a few
# hundred values, three or four levels deep. Beyond them lies a recursive alias
# (`a: &x [*x]`) or an alias bomb (each level repeating the one before ten times).
MAX_DEPTH = 64
MAX_VALUES = 10_000


def _from_yaml(
    node: Any, source: str, constructor: Any, path: str = "", depth: int = 0, left: Optional[List[int]] = None
) -> Node:
    import yaml

    line = node.start_mark.line + 1
    left = left if left is not None else [MAX_VALUES]
    left[0] -= 1
    if depth > MAX_DEPTH:
        raise ConfigError(source, line, path, f"nested more than {MAX_DEPTH} levels deep (a recursive alias?)")
    if left[0] < 0:
        raise ConfigError(source, line, path, f"more than {MAX_VALUES} values (aliases repeating aliases?)")
    if isinstance(node, yaml.MappingNode):
        items: Dict[str, Tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = _from_yaml(key_node, source, constructor, path, depth + 1, left)
            if not isinstance(key.value, str):
                raise key.error(path, f"keys must be strings, got {_describe(key.value)}")
            if key.value in items:
                raise key.error(_join(path, key.value), "duplicate key")
            items[key.value] = (key, _from_yaml(value_node, source, constructor, _join(path, key.value), depth + 1, left))
        return Node(items, source, line)
    if isinstance(node, yaml.SequenceNode):
        return Node(
            [
                _from_yaml(item, source, constructor, f"{path}[{index}]", depth + 1, left)
                for index, item in enumerate(node.value)
            ],
            source,
            line,
        )
    try:
        value = constructor.construct_object(node, deep=True)
    except yaml.YAMLError as error:
        raise ConfigError(source, line, path, f"bad value: {_yaml_problem(error)}") from None
    except Exception:
        # PyYAML's constructors fail with whatever Python raises on an explicit tag the value does
        # not fit (`!!int abc`: ValueError, `!!bool maybe`: KeyError, `!!float` with nothing after
        # it: IndexError) and on an integer of more than 4300 digits (Python's limit).
        shown = repr(str(node.value)[:40]) + ("..." if len(str(node.value)) > 40 else "")
        raise ConfigError(source, line, path, f"bad value for {node.tag}: {shown}") from None
    return Node(value, source, line)


def _yaml_problem(error: Exception) -> str:
    """PyYAML's error in one line, without the position it appends (the error names the line)."""
    import yaml

    if isinstance(error, yaml.MarkedYAMLError):
        text = error.problem or error.context or "not valid YAML"
    elif isinstance(error, yaml.reader.ReaderError):
        char = error.character
        code = ord(char) if isinstance(char, str) and len(char) == 1 else char
        text = f"{error.reason}: character #x{code:04x}" if isinstance(code, int) else str(error.reason)
    else:
        text = str(error)
    return " ".join(text.split("\n")[0].split()) or type(error).__name__


def parse_text(text: str, source: str) -> Optional[Node]:
    """Parse one YAML document into a Node tree (None for an empty file)."""
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader_class)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(source, line, "", f"YAML syntax: {_yaml_problem(error)}") from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1 if isinstance(error.position, int) else None
        raise ConfigError(source, line, "", f"YAML syntax: {_yaml_problem(error)}") from None
    except yaml.YAMLError as error:
        raise ConfigError(source, None, "", f"YAML syntax: {_yaml_problem(error)}") from None
    except UnicodeEncodeError:  # a lone surrogate: text no UTF-8 file can hold (read_file says "not UTF-8 text")
        raise ConfigError(source, None, "", "not UTF-8 text") from None
    if root is None:
        return None
    constructor = yaml.SafeLoader("")
    return _from_yaml(root, source, constructor)


def read_file(path: Union[str, Path]) -> Optional[Node]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise ConfigError(str(path), None, "", f"cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, "", "not UTF-8 text") from None
    return parse_text(text, str(path))


def merge(base: Optional[Node], top: Optional[Node]) -> Optional[Node]:
    """Overlay `top` on `base`: mappings merge key by key, anything else is replaced."""
    if top is None:
        return base
    if base is None or not isinstance(base.value, dict) or not isinstance(top.value, dict):
        return top
    items = dict(base.value)
    for key, (key_node, value_node) in top.value.items():
        if key in items:
            items[key] = (key_node, merge(items[key][1], value_node) or value_node)
        else:
            items[key] = (key_node, value_node)
    return Node(items, top.source, top.line)


# ---------------------------------------------------------------------------
# Validation: a Node tree (or None) against the schema, to a plain tree with
# every default filled in. Plain trees hold only dicts, lists, str, int,
# float, bool and None, so they pass through marshal.

Check = Callable[[Node, str], Any]


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string ({value!r})"
    return f"{type(value).__name__} {value!r}"


def _number(low: float, high: float, integer: bool = False) -> Check:
    kind = "an integer" if integer else "a number"

    def check(node: Node, path: str) -> Any:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise node.error(path, f"must be {kind}, got {_describe(value)}")
        if not low <= value <= high:
            raise node.error(path, f"must be between {_fmt(low)} and {_fmt(high)}, got {_fmt(value)}")
        return value if integer else float(value)

    return check


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _bool(node: Node, path: str) -> Any:
    if not isinstance(node.value, bool):
        raise node.error(path, f"must be true or false, got {_describe(node.value)}")
    return node.value


def _choice(*choices: str) -> Check:
    def check(node: Node, path: str) -> Any:
        if node.value not in choices:
            raise node.error(path, f"must be one of {', '.join(choices)}, got {_describe(node.value)}")
        return node.value

    return check


def _text(node: Node, path: str) -> Any:
    if not isinstance(node.value, str) or not node.value.strip():
        raise node.error(path, f"must be a non-empty string, got {_describe(node.value)}")
    return node.value


def _size(node: Node, path: str) -> Any:
    value = node.value
    size: Optional[int]
    if isinstance(value, bool):
        size = None
    elif isinstance(value, int):
        size = value
    elif isinstance(value, str):
        size = parse_size(value)
    else:
        size = None
    if size is None:
        raise node.error(path, f"must be a size in bytes or with K, M, G (e.g. 64M), got {_describe(value)}")
    if size <= 0:
        raise node.error(path, f"must be more than 0, got {value}")
    return size


def _optional(check: Check) -> Check:
    def optional(node: Node, path: str) -> Any:
        return None if node.value is None else check(node, path)

    return optional


def _list_of(check: Check, unique: bool = False, nonempty: bool = True) -> Check:
    def check_list(node: Node, path: str) -> Any:
        if not isinstance(node.value, list):
            raise node.error(path, f"must be a list, got {_describe(node.value)}")
        if nonempty and not node.value:
            raise node.error(path, "must not be empty")
        values = [check(item, f"{path}[{index}]") for index, item in enumerate(node.value)]
        if unique:
            for index, (item, value) in enumerate(zip(node.value, values)):
                if value in values[:index]:
                    raise item.error(f"{path}[{index}]", f"{value!r} is listed twice")
        return values

    return check_list


class Section:
    """A mapping with known keys, each with a check and a default.

    The default REQUIRED means the key must be given; NESTED (for a key whose
    check is itself a Section) means the nested section's own defaults.
    """

    REQUIRED = object()
    NESTED = object()

    def __init__(
        self, fields: Dict[str, Tuple[Check, Any]], after: Optional[Callable[[Node, str, Dict[str, Any]], None]] = None
    ) -> None:
        self.fields = fields
        self.after = after

    def __call__(self, node: Node, path: str) -> Any:
        if not isinstance(node.value, dict):
            raise node.error(path, f"must be a mapping, got {_describe(node.value)}")
        for key, (key_node, _) in node.value.items():
            if key not in self.fields:
                known = ", ".join(self.fields)
                raise key_node.error(_join(path, key), f"unknown key (known: {known})")
        values: Dict[str, Any] = {}
        for key, (check, default) in self.fields.items():
            if key in node.value:
                values[key] = check(node.value[key][1], _join(path, key))
            elif default is Section.REQUIRED:
                raise node.error(_join(path, key), "missing (required)")
            elif default is Section.NESTED:
                values[key] = check(Node({}, node.source, node.line), _join(path, key))
            else:
                values[key] = _copy(default)
        if self.after is not None:
            self.after(node, path, values)
        return values


def _join(path: str, key: str) -> str:
    if not key.isprintable():  # a key with a line break or a control character: shown quoted, the error stays one line
        key = repr(key)
    return f"{path}.{key}" if path else key


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _at(node: Node, key: str) -> Node:
    """The node of `key` in a mapping node (for errors about a given value), else the mapping itself."""
    entry = node.value.get(key) if isinstance(node.value, dict) else None
    return entry[1] if entry is not None else node


def _check_level(node: Node, path: str, values: Dict[str, Any]) -> None:
    if values["clear"] >= values["trigger"]:
        raise _at(node, "clear").error(
            _join(path, "clear"), f"must be below trigger ({_fmt(values['trigger'])}), got {_fmt(values['clear'])}"
        )


def _index_level(low: float) -> Check:
    return Section(
        {"trigger": (_number(low, 1.0), Section.REQUIRED), "clear": (_number(low, 1.0), Section.REQUIRED)},
        after=_check_level,
    )


def _check_watermark(node: Node, path: str, values: Dict[str, Any]) -> None:
    if WATERMARKS.index(values["clear"]) < WATERMARKS.index(values["below"]):
        raise _at(node, "clear").error(
            _join(path, "clear"), f"must be at or above below ({values['below']}), got {values['clear']}"
        )


def _check_rule(node: Node, path: str, values: Dict[str, Any]) -> None:
    conditions = ("unusable_index", "extfrag_index", "watermark", "predict", "reserve")
    if all(values[name] is None for name in conditions):
        raise node.error(path, f"needs at least one of {', '.join(conditions)}")
    if values["watermark"] is not None and not values["reclaim"]:
        raise _at(node, "reclaim").error(
            _join(path, "reclaim"), "must be true with a watermark condition (compaction adds no free pages)"
        )


def _check_reserve(node: Node, path: str, values: Dict[str, Any]) -> None:
    if values["size"] < 4096:
        raise _at(node, "size").error(_join(path, "size"), f"must be at least 4K, got {values['size']}")


def _check_rules(node: Node, path: str) -> Any:
    rules = _list_of(_RULE, nonempty=False)(node, path)
    seen: Dict[str, int] = {}
    for index, rule in enumerate(rules):
        if rule["name"] is None:
            rule["name"] = f"rule{index}"
        if rule["name"] in seen:
            raise node.value[index].error(
                f"{path}[{index}].name", f"{rule['name']!r} is used by rules[{seen[rule['name']]}] too"
            )
        seen[rule["name"]] = index
    return rules


def _check_rate(node: Node, path: str, values: Dict[str, Any]) -> None:
    if values["clear"] >= values["rate"]:
        raise _at(node, "clear").error(
            _join(path, "clear"), f"must be below rate ({_fmt(values['rate'])}), got {_fmt(values['clear'])}"
        )


def _check_psi_trigger(node: Node, path: str, values: Dict[str, Any]) -> None:
    if values["clear"] >= values["avg10"]:
        raise _at(node, "clear").error(
            _join(path, "clear"), f"must be below avg10 ({_fmt(values['avg10'])}), got {_fmt(values['clear'])}"
        )


def _check_poll(node: Node, path: str, values: Dict[str, Any]) -> None:
    if values["min_interval"] > values["max_interval"]:
        raise _at(node, "min_interval").error(
            _join(path, "min_interval"),
            f"must not be above max_interval ({_fmt(values['max_interval'])}), got {_fmt(values['min_interval'])}",
        )


def _check_psi(node: Node, path: str, values: Dict[str, Any]) -> None:
    if values["stall_ms"] > values["window_ms"]:
        raise _at(node, "stall_ms").error(
            _join(path, "stall_ms"), f"must not be above window_ms ({values['window_ms']}), got {values['stall_ms']}"
        )


def _check_reclaim(node: Node, path: str, values: Dict[str, Any]) -> None:
    if values["min"] > values["max_per_event"]:
        raise _at(node, "min").error(_join(path, "min"), "must not be above max_per_event")
    if values["max_per_event"] > values["max_per_hour"]:
        raise _at(node, "max_per_event").error(_join(path, "max_per_event"), "must not be above max_per_hour")


def _check_guards(node: Node, path: str, values: Dict[str, Any]) -> None:
    if values["cooldown_max"] < values["cooldown"]:
        raise _at(node, "cooldown_max").error(
            _join(path, "cooldown_max"),
            f"must not be below cooldown ({_fmt(values['cooldown'])}), got {_fmt(values['cooldown_max'])}",
        )


def _check_thrash(node: Node, path: str, values: Dict[str, Any]) -> None:
    if values["backoff"] > values["backoff_max"]:
        raise _at(node, "backoff").error(_join(path, "backoff"), "must not be above backoff_max")


def _check_record(node: Node, path: str, values: Dict[str, Any]) -> None:
    if values["max_size"] < 64 << 10:
        raise _at(node, "max_size").error(_join(path, "max_size"), f"must be at least 64K, got {values['max_size']}")


def _order(node: Node, path: str) -> Any:
    """A page order: a number, or a name the running kernel resolves (huge, pageblock, costly)."""
    if isinstance(node.value, str):
        if node.value not in ORDER_NAMES:
            raise node.error(path, f"must be an order (0 to {MAX_ORDER_LIMIT}) or one of {', '.join(ORDER_NAMES)}, got {node.value!r}")
        return node.value
    return _number(0, MAX_ORDER_LIMIT, integer=True)(node, path)


def _check_top(node: Node, path: str, values: Dict[str, Any]) -> None:
    trigger = values["triggers"]["allocation_failures"]
    if trigger is None:
        return
    watched = values["failures"]["counters"]
    for index, name in enumerate(trigger["counters"]):
        if name not in watched:
            where = _at(_at(_at(node, "triggers"), "allocation_failures"), "counters")
            raise where.error(
                f"triggers.allocation_failures.counters[{index}]",
                f"{name} is not in failures.counters (watched: {', '.join(watched) or 'none'})",
            )


_ZONE_NAME = _text
_RULE = Section(
    {
        "name": (_optional(_text), None),
        "zones": (_list_of(_ZONE_NAME, unique=True), ["*"]),
        "node": (_optional(_number(0, 1023, integer=True)), None),
        "orders": (_list_of(_order, unique=True), Section.REQUIRED),
        "min_zone_size": (_size, 64 << 20),
        "unusable_index": (_optional(_index_level(0.0)), None),
        "extfrag_index": (_optional(_index_level(0.0)), None),
        "watermark": (
            _optional(
                Section(
                    {"below": (_choice(*WATERMARKS), Section.REQUIRED), "clear": (_choice(*WATERMARKS), "high")},
                    after=_check_watermark,
                )
            ),
            None,
        ),
        "predict": (_optional(Section({"horizon": (_number(10.0, 86400.0), Section.REQUIRED)})), None),
        "reserve": (_optional(Section({"size": (_size, Section.REQUIRED)}, after=_check_reserve)), None),
        "sustain": (_number(1, 1000, integer=True), 1),
        "reclaim": (_bool, True),
    },
    after=_check_rule,
)


def _absolute(suffix: str = "") -> Check:
    """A file path: absolute, not a directory, ending in `suffix` when given."""

    def check(node: Node, path: str) -> Any:
        value = _text(node, path)
        if not value.startswith("/"):
            raise node.error(path, f"must be an absolute path, got {value!r}")
        if value.endswith("/"):
            raise node.error(path, f"must name a file, not a directory, got {value!r}")
        if suffix and not value.endswith(suffix):
            raise node.error(path, f"must end in {suffix} (node_exporter reads only those), got {value!r}")
        return value

    return check


def _backends() -> Section:
    """`backends`: one section per backend of the registry, `enabled` and the options it declares."""
    sections: Dict[str, Tuple[Check, Any]] = {}
    for spec in SPECS:
        fields: Dict[str, Tuple[Check, Any]] = {"enabled": (_bool, spec.enabled)}
        for key, (default, choices) in spec.options.items():
            fields[key] = (_choice(*choices) if choices else _text, default)
        sections[spec.name] = (Section(fields), Section.NESTED)
    return Section(sections)


SCHEMA = Section(
    {
        "poll": (
            Section(
                {
                    "min_interval": (_number(0.1, 3600.0), 1.0),
                    "max_interval": (_number(0.1, 3600.0), 120.0),
                    "approach": (_number(0.0, 0.99), 0.75),
                },
                after=_check_poll,
            ),
            Section.NESTED,
        ),
        "psi": (
            Section(
                {
                    "wakeup": (_bool, True),
                    "kind": (_choice("some", "full"), "some"),
                    "stall_ms": (_number(1, 10000, integer=True), 100),
                    # 6.1 needs a window of at least 500 ms; 10 s is the kernel's maximum.
                    "window_ms": (_number(500, 10000, integer=True), 2000),
                },
                after=_check_psi,
            ),
            Section.NESTED,
        ),
        "rules": (_check_rules, DEFAULT_RULES),
        "triggers": (
            Section(
                {
                    "psi": (
                        _optional(
                            Section(
                                {
                                    "kind": (_choice("some", "full"), "some"),
                                    "avg10": (_number(0.01, 100.0), Section.REQUIRED),
                                    "clear": (_number(0.0, 100.0), Section.REQUIRED),
                                    "sustain": (_number(1, 1000, integer=True), 1),
                                },
                                after=_check_psi_trigger,
                            )
                        ),
                        None,
                    ),
                    "allocation_failures": (
                        _optional(
                            Section(
                                {
                                    "min_order": (_number(0, MAX_ORDER_LIMIT, integer=True), 1),
                                    "counters": (
                                        _list_of(_choice(*FAILURE_COUNTERS), unique=True, nonempty=False),
                                        list(ALLOCATION_FAILURE_COUNTERS),
                                    ),
                                    "count": (_number(1, 1000000, integer=True), 1),
                                    "window": (_number(1.0, 3600.0), 10.0),
                                    "sustain": (_number(1, 1000, integer=True), 1),
                                }
                            )
                        ),
                        {
                            "min_order": 1,
                            "counters": list(ALLOCATION_FAILURE_COUNTERS),
                            "count": 1,
                            "window": 10.0,
                            "sustain": 1,
                        },
                    ),
                    "vmstat": (
                        _list_of(
                            Section(
                                {
                                    "counter": (_choice(*VMSTAT_COUNTERS), Section.REQUIRED),
                                    "rate": (_number(0.001, 1e9), Section.REQUIRED),
                                    "clear": (_number(0.0, 1e9), Section.REQUIRED),
                                    "sustain": (_number(1, 1000, integer=True), 1),
                                },
                                after=_check_rate,
                            ),
                            nonempty=False,
                        ),
                        [],
                    ),
                }
            ),
            Section.NESTED,
        ),
        "failures": (
            Section(
                {
                    "kernel_log": (_bool, True),
                    "counters": (
                        _list_of(_choice(*FAILURE_COUNTERS), unique=True, nonempty=False),
                        list(FAILURE_COUNTERS),
                    ),
                }
            ),
            Section.NESTED,
        ),
        "backends": (_backends(), Section.NESTED),
        "reclaim": (
            Section(
                {
                    "prefer": (_list_of(_choice(*RECLAIM_NAMES), unique=True), list(RECLAIM_NAMES)),
                    "min": (_size, 4 << 20),
                    "max_per_event": (_size, 64 << 20),
                    "max_per_hour": (_size, 256 << 20),
                    "sync": (_bool, False),
                    "vfs_cache_pressure": (_optional(_number(100, 1000000, integer=True)), 10000),
                },
                after=_check_reclaim,
            ),
            Section.NESTED,
        ),
        "guards": (
            Section(
                {
                    "cooldown": (_number(0.0, 86400.0), 60.0),
                    "cooldown_max": (_number(0.0, 86400.0), 960.0),
                    "thrash": (
                        Section(
                            {
                                "watch": (_number(0.0, 86400.0), 60.0),
                                "refault_factor": (_number(1.0, 1000.0), 2.0),
                                "refault_min": (_number(0.0, 1e9), 100.0),
                                "psi_some_avg10": (_number(0.0, 100.0), 10.0),
                                "backoff": (_number(0.0, 86400.0), 300.0),
                                "backoff_max": (_number(0.0, 86400.0), 3600.0),
                            },
                            after=_check_thrash,
                        ),
                        Section.NESTED,
                    ),
                },
                after=_check_guards,
            ),
            Section.NESTED,
        ),
        "log": (
            Section({"target": (_choice("auto", "journal", "stderr"), "auto"), "debug": (_bool, False)}),
            Section.NESTED,
        ),
        "dry_run": (_bool, False),
        # Files shrinkd writes besides the journal (shrinkd.outputs, docs/tools.md).
        "record": (
            Section(
                {
                    "path": (_optional(_absolute()), None),
                    "max_size": (_size, 16 << 20),
                    "interval": (_number(1.0, 86400.0), 300.0),
                },
                after=_check_record,
            ),
            Section.NESTED,
        ),
        "prometheus": (
            Section(
                {
                    "textfile": (_optional(_absolute(".prom")), None),
                    "interval": (_number(1.0, 3600.0), 30.0),
                }
            ),
            Section.NESTED,
        ),
    },
    after=_check_top,
)


def validate(tree: Optional[Node]) -> Dict[str, Any]:
    """Check a merged tree against the schema; None (no files) gives the built-in defaults."""
    if tree is None:
        tree = Node({}, BUILTIN, None)
    result: Dict[str, Any] = SCHEMA(tree, "")
    return result


DEFAULTS: Dict[str, Any] = validate(None)


def load_plain(paths: Sequence[Union[str, Path]]) -> Dict[str, Any]:
    """Read, merge and validate files; no files gives the built-in defaults."""
    tree: Optional[Node] = None
    for path in paths:
        tree = merge(tree, read_file(path))
    return validate(tree)
