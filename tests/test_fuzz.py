"""Every parser under generated bad input (tests/fuzzing.py): a parsed value or the documented
error, nothing else. A few hundred inputs per parser here; bench/fuzz.py runs 100,000 each.

The inputs that found bugs are kept below as regression cases, with the error each now gives.
"""

from __future__ import annotations

from typing import Any, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings

from shrinkd import config, configfile, parse
from shrinkd.errors import ConfigError, InputError

from .fuzzing import BY_NAME, CONFIG_SOURCE, ERROR, PARSED, TARGETS, Bug, check_buddyinfo, check_config, check_kmsg

CI_EXAMPLES = 250  # per parser; derandomized, so CI sees the same inputs every run


@pytest.mark.parametrize("name", [target.name for target in TARGETS])
def test_fuzz(name: str) -> None:
    target = BY_NAME[name]
    outcomes = {PARSED: 0, ERROR: 0}

    @settings(
        max_examples=CI_EXAMPLES,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def fuzz(value: Any) -> None:
        outcomes[target.check(value)] += 1

    fuzz()
    # The inputs reach both outcomes: they are close enough to real files to parse, and broken enough to be refused.
    assert outcomes[PARSED] > 0 and outcomes[ERROR] > 0, outcomes


# -- the oracle itself can fail ----------------------------------------------------------


def test_an_undocumented_exception_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str, source: str = "/proc/buddyinfo") -> parse.BuddyInfo:
        raise ValueError("unexpected")

    monkeypatch.setattr(parse, "parse_buddyinfo", broken)
    with pytest.raises(ValueError):
        check_buddyinfo("Node 0, zone DMA 1\n")


def test_a_multiline_or_unnamed_error_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    def two_lines(text: str, source: str = "/proc/buddyinfo") -> parse.BuddyInfo:
        raise InputError(source, 1, "first\nsecond")

    monkeypatch.setattr(parse, "parse_buddyinfo", two_lines)
    with pytest.raises(Bug, match="not one line"):
        check_buddyinfo("x")

    def unnamed(text: str, source: str = "/proc/buddyinfo") -> parse.BuddyInfo:
        raise InputError("elsewhere", 1, "wrong")

    monkeypatch.setattr(parse, "parse_buddyinfo", unnamed)
    with pytest.raises(Bug, match="naming /proc/buddyinfo"):
        check_buddyinfo("x")


def test_a_wrongly_shaped_value_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    uneven = parse.BuddyInfo((parse.ZoneFree(0, "DMA", (1, 2)), parse.ZoneFree(0, "DMA32", (1,))))
    monkeypatch.setattr(parse, "parse_buddyinfo", lambda text, source="": uneven)
    with pytest.raises(Bug, match="unequal"):
        check_buddyinfo("x")


# -- regression cases: inputs the fuzzing found, and what they give now -------------------

PROC_CASES: List[Tuple[str, Any, str]] = [
    # str.isdigit() accepts a superscript digit that int() refuses: a ValueError escaped.
    (
        "buddyinfo",
        lambda: parse.parse_buddyinfo("Node \u00b2, zone DMA 1 2 3\n"),
        "/proc/buddyinfo:1: expected 'Node N, zone NAME counts...', got 'Node \u00b2, zone DMA 1 2 3'",
    ),
    (
        "zoneinfo",
        lambda: parse.parse_zoneinfo("Node \u00b2, zone DMA\n  pages free 3\n"),
        "/proc/zoneinfo:1: expected 'Node N, zone NAME', got 'Node \u00b2, zone DMA'",
    ),
    # A node number of 5000 digits: int() refuses more than 4300 (ValueError).
    (
        "buddyinfo-long",
        lambda: parse.parse_buddyinfo("Node " + "9" * 5000 + ", zone DMA 1 2 3\n"),
        "/proc/buddyinfo:1: expected 'Node N, zone NAME counts...', got 'Node " + "9" * 55 + "'",
    ),
]


def test_kmsg_regressions() -> None:
    # An order written with a superscript digit, or with 5000 digits: int() raised ValueError.
    # (/dev/kmsg escapes bytes outside ASCII, so these come from no kernel; the parser still takes any record.)
    for order in ("\u00b2", "9" * 5000):
        data = f"4,900,5000000,-;bash: page allocation failure: order:{order}, mode:0x800(GFP_NOWAIT)\n".encode()
        assert check_kmsg(data) == PARSED
        assert parse.allocation_failure(parse.parse_kmsg_record(data)) is None


@pytest.mark.parametrize(("name", "run", "message"), PROC_CASES, ids=[case[0] for case in PROC_CASES])
def test_proc_regressions(name: str, run: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        run()
    assert str(caught.value) == message


CONFIG_CASES: List[Tuple[str, str]] = [
    # PyYAML's reader error came with a second line ("in <unicode string>, position 0").
    ("\x1f", "fuzz.yaml:1: YAML syntax: control characters are not allowed: character #x001f"),
    ("\x9f", "fuzz.yaml:1: YAML syntax: control characters are not allowed: character #x009f"),
    ("poll:\n  min_interval: \x07\n", "fuzz.yaml:2: YAML syntax: control characters are not allowed: character #x0007"),
    # An explicit tag the value does not fit: ValueError, KeyError, AttributeError escaped from PyYAML's constructors.
    ("dry_run: !!int abc\n", "fuzz.yaml:1: dry_run: bad value for tag:yaml.org,2002:int: 'abc'"),
    ("dry_run: !!bool maybe\n", "fuzz.yaml:1: dry_run: bad value for tag:yaml.org,2002:bool: 'maybe'"),
    ("dry_run: !!float x\n", "fuzz.yaml:1: dry_run: bad value for tag:yaml.org,2002:float: 'x'"),
    ("!!float", "fuzz.yaml:1: bad value for tag:yaml.org,2002:float: ''"),  # IndexError (found by bench/fuzz.py)
    (
        "dry_run: !!timestamp 2001-13-45\n",
        "fuzz.yaml:1: dry_run: bad value for tag:yaml.org,2002:timestamp: '2001-13-45'",
    ),
    ("dry_run: !!timestamp x\n", "fuzz.yaml:1: dry_run: bad value for tag:yaml.org,2002:timestamp: 'x'"),
    # An integer of more than 4300 digits: Python's int() limit, a ValueError.
    (
        "dry_run: " + "9" * 5000 + "\n",
        "fuzz.yaml:1: dry_run: bad value for tag:yaml.org,2002:int: '" + "9" * 40 + "'...",
    ),
    # A value YAML resolves to the `=` tag no safe constructor knows: the error had a second line.
    ("\n\n=", "fuzz.yaml:3: bad value: could not determine a constructor for the tag 'tag:yaml.org,2002:value'"),
    # A constructor's own error came with a second line too.
    ("dry_run: !foo x\n", "fuzz.yaml:1: dry_run: bad value: could not determine a constructor for the tag '!foo'"),
    # A recursive alias: RecursionError.
    ("rules: &a [*a]\n", "fuzz.yaml:1: rules" + "[0]" * 64 + ": nested more than 64 levels deep (a recursive alias?)"),
    # A key with a line break made the error two lines.
    (
        "? |\n  poll\n  x\n: 1\n",
        f"fuzz.yaml:1: 'poll\\nx\\n': unknown key (known: {', '.join(configfile.SCHEMA.fields)})",
    ),
    # A superscript digit in a size: str.isdigit() yes, int() no.
    (
        "reclaim:\n  min: \u00b2M\n",
        "fuzz.yaml:2: reclaim.min: must be a size in bytes or with K, M, G (e.g. 64M), got a string ('\u00b2M')",
    ),
    # A lone surrogate (no UTF-8 file holds one; parse_text takes any str): UnicodeEncodeError.
    ("dry_run: \ud800\n", "fuzz.yaml: not UTF-8 text"),
]


@pytest.mark.parametrize(("text", "message"), CONFIG_CASES, ids=[repr(case[0][:24]) for case in CONFIG_CASES])
def test_config_regressions(text: str, message: str) -> None:
    assert check_config(text) == ERROR
    with pytest.raises(ConfigError) as caught:
        configfile.validate(configfile.parse_text(text, CONFIG_SOURCE))
    assert str(caught.value) == message


def test_an_alias_bomb_is_refused_quickly() -> None:
    # Ten aliases of ten aliases, six deep: a million values from a 300-byte file.
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, 6):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]")
    with pytest.raises(ConfigError) as caught:
        configfile.validate(configfile.parse_text("\n".join(lines) + "\n", CONFIG_SOURCE))
    assert str(caught.value).endswith(f"more than {configfile.MAX_VALUES} values (aliases repeating aliases?)")


def test_size_with_a_digit_python_reads_differently() -> None:
    assert config.parse_size("\u00b2M") is None
    assert config.parse_size("\u0663M") is None  # Arabic-Indic three: int() would read it; a size is ASCII digits
    assert config.parse_size("9" * 5000 + "M") is None  # int() refuses more than 4300 digits
    assert config.parse_size("3M") == 3 << 20


def test_the_benchmark_runs_and_prints_its_table() -> None:
    """bench/fuzz.py in a quick run: a row per target with its counts adding up, and exit 0 (no bug)."""
    import re
    import subprocess
    import sys

    from .fuzzing import REPO

    result = subprocess.run(
        [sys.executable, "bench/fuzz.py", "--inputs", "400", "--batch", "20", "--only", "buddyinfo", "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = re.findall(r"^(\w[\w-]*)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)$", result.stdout, re.M)
    assert [row[0] for row in rows] == ["buddyinfo", "config"], result.stdout
    for _, inputs, parsed, refused, _, _ in rows:
        assert int(inputs) == 400 == int(parsed) + int(refused)
    assert "total: 800 inputs, no outcome other than a parsed value or the documented error" in result.stdout
