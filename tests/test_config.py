"""Configuration: the documented default file, drop-ins, strict validation with FILE:LINE errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from shrinkd import config, configfile, configload
from shrinkd.actions.registry import RECLAIM_NAMES
from shrinkd.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
DEFAULT_YAML = REPO / "config" / "shrinkd.yaml"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, "shrinkd.yaml", text)
    with pytest.raises(ConfigError) as caught:
        configload.load([path])
    return str(caught.value).replace(str(path), "FILE")


# -- the documented default ------------------------------------------------------


def test_documented_file_is_exactly_the_builtin_defaults() -> None:
    assert configfile.load_plain([DEFAULT_YAML]) == configfile.DEFAULTS
    assert configload.load([DEFAULT_YAML]).replace(sources=()) == configload.load([]).replace(sources=())


def _key_paths(value: Any, prefix: str = "") -> List[str]:
    paths = []
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.append(path)
            paths.extend(_key_paths(item, path))
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for item in value:
            paths.extend(_key_paths(item, f"{prefix}[]"))
    return paths


def test_every_key_of_the_schema_is_documented_in_docs_config_md(tmp_path: Path) -> None:
    text = (REPO / "docs" / "config.md").read_text()
    plain = configfile.DEFAULTS
    # Sections whose defaults are null or empty still have keys: take them from filled-in examples.
    example = write(tmp_path, "example.yaml", EXAMPLE)
    keys = set(_key_paths(plain)) | set(_key_paths(configfile.load_plain([example])))
    missing = sorted(key for key in keys if f"`{key}`" not in text)
    assert not missing, f"docs/config.md does not document: {missing}"


EXAMPLE = """\
rules:
  - {zones: [Normal], orders: [3], watermark: {below: low, clear: high}}
triggers:
  psi: {kind: some, avg10: 20, clear: 5, sustain: 2}
  vmstat: [{counter: compact_stall, rate: 1, clear: 0.1, sustain: 2}]
"""


def test_every_key_line_of_the_documented_file_has_a_comment_nearby() -> None:
    # A key is commented when its line has a comment or a comment comes right before it.
    # The trigger/clear pairs are documented at their parent key; the second example
    # rule repeats the keys of the first, documented there.
    lines = DEFAULT_YAML.read_text().splitlines()
    second_rule = _line_of(lines, "name: huge-page")
    uncommented = []
    for number, line in enumerate(lines):
        match = re.match(r"^(\s*)(- )?([a-z_0-9]+):", line)
        if not match or "#" in line or (number + 1 >= second_rule and line.startswith("    ")):
            continue
        key = number
        if match.group(3) in ("trigger", "clear"):
            indent = len(match.group(1))
            key = next(n for n in range(number - 1, -1, -1) if len(lines[n]) - len(lines[n].lstrip()) < indent)
        previous = lines[key - 1].strip().lstrip("- ") if key else ""
        if not previous.startswith("#"):
            uncommented.append(f"{number + 1}: {line.strip()}")
    assert not uncommented, f"keys without a comment: {uncommented}"


def _line_of(lines: List[str], text: str) -> int:
    return next(number + 1 for number, line in enumerate(lines) if text in line)


def test_no_files_means_builtin_defaults(tmp_path: Path) -> None:
    assert configload.default_sources(tmp_path / "shrinkd.yaml", tmp_path / "conf.d") == []
    loaded = configload.load([])
    assert loaded.sources == (config.BUILTIN,)
    assert [rule.name for rule in loaded.rules] == ["costly-order", "huge-page"]
    assert loaded.enabled == ("compact", "node_reclaim", "memory_reclaim", "shrinkmem")  # the registry's order


# -- sources and drop-ins -----------------------------------------------------------


def test_dropins_are_read_in_name_order_after_the_main_file(tmp_path: Path) -> None:
    main = write(tmp_path, "shrinkd.yaml", "guards:\n  cooldown: 10\n")
    write(tmp_path, "conf.d/20-late.yaml", "guards:\n  cooldown: 30\n")
    write(tmp_path, "conf.d/10-early.yaml", "guards:\n  cooldown: 20\n  thrash: {backoff: 50}\n")
    write(tmp_path, "conf.d/README", "not yaml, not read\n")
    sources = configload.default_sources(main, tmp_path / "conf.d")
    assert [Path(p).name for p in sources] == ["shrinkd.yaml", "10-early.yaml", "20-late.yaml"]
    loaded = configload.load(sources)
    assert loaded.cooldown == 30.0
    # Mappings merge key by key: the early drop-in's backoff stays, other thrash keys keep their defaults.
    assert loaded.thrash.backoff == 50.0
    assert loaded.thrash.watch == configfile.DEFAULTS["guards"]["thrash"]["watch"]


def test_dropins_without_a_main_file(tmp_path: Path) -> None:
    write(tmp_path, "conf.d/10-dry.yaml", "dry_run: true\n")
    sources = configload.default_sources(tmp_path / "absent.yaml", tmp_path / "conf.d")
    assert configload.load(sources).dry_run is True


def test_a_list_in_a_later_file_replaces_the_earlier_one(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        "a.yaml",
        "rules:\n  - {name: one, zones: [Normal], orders: [3], unusable_index: {trigger: 0.9, clear: 0.5}}\n",
    )
    drop = write(
        tmp_path,
        "b.yaml",
        "rules:\n  - {name: two, zones: [DMA32], orders: [9], extfrag_index: {trigger: 0.6, clear: 0.2}}\n",
    )
    loaded = configload.load([main, drop])
    assert [(r.name, r.zones, r.orders) for r in loaded.rules] == [("two", ("DMA32",), (9,))]
    assert loaded.rules[0].extfrag_index == config.Level(600, 200)


def test_an_error_in_a_dropin_names_the_dropin_and_its_line(tmp_path: Path) -> None:
    main = write(tmp_path, "shrinkd.yaml", "poll:\n  min_interval: 2\n")
    drop = write(tmp_path, "conf.d/50-x.yaml", "# a comment\npoll:\n  max_interval: 1\n")
    with pytest.raises(ConfigError) as caught:
        configload.load([main, drop])
    # The check compares two values from two files; the error points at the one that is too big.
    assert str(caught.value) == f"{main}:2: poll.min_interval: must not be above max_interval (1), got 2"


def test_resolve_prefers_the_command_line_file(tmp_path: Path) -> None:
    given = write(tmp_path, "x.yaml", "dry_run: true\n")
    assert configload.resolve(str(given)) == [str(given)]


def test_a_missing_command_line_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        configload.load([tmp_path / "nope.yaml"])
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory"
    assert caught.value.exit_code == 2


def test_an_empty_file_changes_nothing(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.yaml", "# only a comment\n")
    assert configload.load([empty]).replace(sources=()) == configload.load([]).replace(sources=())


# -- strict validation ------------------------------------------------------------

INVALID: List[Tuple[str, str]] = [
    (
        "polll:\n  min_interval: 1\n",
        "FILE:1: polll: unknown key (known: poll, psi, rules, triggers, failures, backends, reclaim, guards, log, dry_run, record, prometheus)",
    ),
    ("poll:\n  min_interval: fast\n", "FILE:2: poll.min_interval: must be a number, got a string ('fast')"),
    ("poll:\n  min_interval: 0.01\n", "FILE:2: poll.min_interval: must be between 0.1 and 3600, got 0.01"),
    ("poll:\n  max_interval: true\n", "FILE:2: poll.max_interval: must be a number, got a boolean"),
    ("psi:\n  kind: partial\n", "FILE:2: psi.kind: must be one of some, full, got a string ('partial')"),
    ("psi:\n  window_ms: 400\n", "FILE:2: psi.window_ms: must be between 500 and 10000, got 400"),
    ("psi:\n  stall_ms: 1.5\n", "FILE:2: psi.stall_ms: must be an integer, got float 1.5"),
    (
        "psi:\n  stall_ms: 3000\n  window_ms: 2000\n",
        "FILE:2: psi.stall_ms: must not be above window_ms (2000), got 3000",
    ),
    ("rules: {}\n", "FILE:1: rules: must be a list, got a mapping"),
    (
        "rules:\n  - zones: [Normal]\n    unusable_index: {trigger: 0.9, clear: 0.5}\n",
        "FILE:2: rules[0].orders: missing (required)",
    ),
    (
        "rules:\n  - zones: [Normal]\n    orders: [3, 16]\n    unusable_index: {trigger: 0.9, clear: 0.5}\n",
        "FILE:3: rules[0].orders[1]: must be between 0 and 15, got 16",
    ),
    (
        "rules:\n  - zones: [Normal]\n    orders: [3, 3]\n    unusable_index: {trigger: 0.9, clear: 0.5}\n",
        "FILE:3: rules[0].orders[1]: 3 is listed twice",
    ),
    (
        "rules:\n  - zones: [Normal]\n    orders: [3]\n",
        "FILE:2: rules[0]: needs at least one of unusable_index, extfrag_index, watermark, predict, reserve",
    ),
    (
        "guards:\n  cooldown: 120\n  cooldown_max: 60\n",
        "FILE:3: guards.cooldown_max: must not be below cooldown (120), got 60",
    ),
    (
        "rules:\n  - zones: [Normal]\n    orders: [huge]\n    reserve: {size: 1K}\n",
        "FILE:4: rules[0].reserve.size: must be at least 4K, got 1024",
    ),
    (
        "rules:\n  - zones: [Normal]\n    orders: [huge]\n    reserve: {}\n",
        "FILE:4: rules[0].reserve.size: missing (required)",
    ),
    (
        "rules:\n  - zones: [Normal]\n    orders: [3]\n    unusable_index:\n      trigger: 0.5\n      clear: 0.7\n",
        "FILE:6: rules[0].unusable_index.clear: must be below trigger (0.5), got 0.7",
    ),
    (
        "rules:\n  - zones: [Normal]\n    orders: [3]\n    extfrag_index: {trigger: 1.5, clear: 0.1}\n",
        "FILE:4: rules[0].extfrag_index.trigger: must be between 0 and 1, got 1.5",
    ),
    (
        "rules:\n  - zones: [Normal]\n    orders: [3]\n    watermark: {below: high, clear: low}\n",
        "FILE:4: rules[0].watermark.clear: must be at or above below (high), got low",
    ),
    (
        "rules:\n  - zones: [Normal]\n    orders: [3]\n    watermark: {below: low}\n    reclaim: false\n",
        "FILE:5: rules[0].reclaim: must be true with a watermark condition (compaction adds no free pages)",
    ),
    (
        "rules:\n  - zones: [Normal]\n    orders: [3]\n    unusable_index: {trigger: 0.9, clear: 0.5}\n    colour: red\n",
        "FILE:5: rules[0].colour: unknown key (known: name, zones, node, orders, min_zone_size, unusable_index, "
        "extfrag_index, watermark, predict, reserve, sustain, reclaim)",
    ),
    (
        "rules:\n  - name: a\n    orders: [3]\n    unusable_index: {trigger: 0.9, clear: 0.5}\n"
        "  - name: a\n    orders: [9]\n    unusable_index: {trigger: 0.9, clear: 0.5}\n",
        "FILE:5: rules[1].name: 'a' is used by rules[0] too",
    ),
    (
        "rules:\n  - orders: [3]\n    min_zone_size: 12X\n    unusable_index: {trigger: 0.9, clear: 0.5}\n",
        "FILE:3: rules[0].min_zone_size: must be a size in bytes or with K, M, G (e.g. 64M), got a string ('12X')",
    ),
    ("reclaim:\n  min: 0\n", "FILE:2: reclaim.min: must be more than 0, got 0"),
    ("reclaim:\n  min: 128M\n", "FILE:2: reclaim.min: must not be above max_per_event"),
    (
        "reclaim:\n  prefer: [shrinkmem, swap]\n",
        f"FILE:2: reclaim.prefer[1]: must be one of {', '.join(RECLAIM_NAMES)}, got a string ('swap')",
    ),
    (
        "backends:\n  drop_caches: {enabled: yes please}\n",
        "FILE:2: backends.drop_caches.enabled: must be true or false, got a string ('yes please')",
    ),
    (
        "backends:\n  drop_caches: {what: all}\n",
        "FILE:2: backends.drop_caches.what: must be one of pagecache, slab, both, got a string ('all')",
    ),
    (
        "triggers:\n  vmstat:\n    - {counter: pgfault, rate: 1, clear: 0}\n",
        "FILE:3: triggers.vmstat[0].counter: must be one of compact_stall, compact_fail, allocstall, "
        "thp_fault_fallback, thp_collapse_alloc_failed, got a string ('pgfault')",
    ),
    ("triggers:\n  psi: {avg10: 10, clear: 20}\n", "FILE:2: triggers.psi.clear: must be below avg10 (10), got 20"),
    ("guards:\n  thrash:\n    backoff: 7200\n", "FILE:3: guards.thrash.backoff: must not be above backoff_max"),
    ("log:\n  target: syslog\n", "FILE:2: log.target: must be one of auto, journal, stderr, got a string ('syslog')"),
    ("- just\n- a list\n", "FILE:1: must be a mapping, got a list"),
    ("poll:\n  min_interval: 1\n  min_interval: 2\n", "FILE:3: poll.min_interval: duplicate key"),
    ("poll:\n  min_interval: [1\n", "FILE:3: YAML syntax: "),
    ("poll:\n\tmin_interval: 1\n", "FILE:2: YAML syntax: "),
]


@pytest.mark.parametrize(("text", "expected"), INVALID, ids=[expected.split(": ")[1] for _, expected in INVALID])
def test_invalid_configuration_is_one_line_with_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text)
    if expected.endswith("YAML syntax: "):  # the rest is the YAML parser's own wording
        assert message.startswith(expected) and len(message) > len(expected) + 10, message
    else:
        assert message == expected


def test_sizes() -> None:
    assert config.parse_size("64M") == 64 << 20
    assert config.parse_size("64MiB") == 64 << 20
    assert config.parse_size("1g") == 1 << 30
    assert config.parse_size("512K") == 512 << 10
    assert config.parse_size("4096") == 4096
    for bad in ("", "M", "1.5M", "-1M", "12X", "64 M"):
        assert config.parse_size(bad) is None, bad


def test_index_levels_are_kept_in_thousandths(tmp_path: Path) -> None:
    path = write(
        tmp_path, "a.yaml", "rules:\n  - {name: r, orders: [9], unusable_index: {trigger: 0.95, clear: 0.851}}\n"
    )
    assert configload.load([path]).rules[0].unusable_index == config.Level(950, 851)


# -- the reader process ---------------------------------------------------------------


def test_isolated_load_gives_the_same_configuration(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.yaml",
        "poll: {min_interval: 0.5}\nrules:\n  - {name: r, orders: [9], unusable_index: {trigger: 0.9, clear: 0.8}}\n",
    )
    assert configload.load_isolated([path]) == configload.load([path])
    assert configload.load_isolated([]) == configload.load([])


def test_isolated_load_reports_errors_as_the_same_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "poll:\n  approach: 2\n")
    with pytest.raises(ConfigError) as caught:
        configload.load_isolated([path])
    assert str(caught.value) == f"{path}:2: poll.approach: must be between 0 and 0.99, got 2"


def test_isolated_load_does_not_import_yaml_here(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "dry_run: true\n")
    code = (
        "import sys; from pathlib import Path; from shrinkd import configload; "
        f"c = configload.load_isolated([Path({str(path)!r})]); "
        "print(c.dry_run, 'yaml' in sys.modules, 'shrinkd.configfile' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.split() == ["True", "False", "False"]


# -- check-config ---------------------------------------------------------------------


def shrinkd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shrinkd", *args], cwd=REPO, capture_output=True, text=True, check=False
    )


def test_check_config_accepts_the_documented_file() -> None:
    result = shrinkd("check-config", str(DEFAULT_YAML))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{DEFAULT_YAML}: OK (2 rules: costly-order, huge-page")


def test_check_config_and_run_exit_2_with_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "rules:\n  - orders: [3]\n    unusable_index: {trigger: 0.2, clear: 0.4}\n")
    expected = f"shrinkd: {bad}:3: rules[0].unusable_index.clear: must be below trigger (0.2), got 0.4\n"
    for args in (("check-config", str(bad)), ("run", "--once", "--config", str(bad))):
        result = shrinkd(*args)
        assert result.returncode == 2, args
        assert result.stderr == expected
        assert result.stdout == ""


def test_plain_values_survive_marshal() -> None:
    import marshal

    plain: Dict[str, Any] = configfile.DEFAULTS
    assert marshal.loads(marshal.dumps(plain)) == plain


def test_the_board_tests_rule_has_the_built_in_huge_page_levels() -> None:
    """tests/boards.py's drop-in rule checks the defaults' levels at the huge-page order on every target."""
    from tests import boards

    rule = next(r for r in configload.builtin().rules if r.name == "huge-page")
    assert rule.orders == ("huge",) and rule.unusable_index is not None
    assert (rule.unusable_index.trigger / 1000, rule.unusable_index.clear / 1000) == (boards.TRIGGER, boards.CLEAR)
