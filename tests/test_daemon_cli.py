"""`shrinkd run`, `reclaim`, `compact` as a user runs them, on fake /proc and /sys trees."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from shrinkd import cli
from shrinkd.actions.registry import RECLAIM_NAMES

from .fakekernel import STATES, Tree
from .test_journal import told

REPO = Path(__file__).resolve().parent.parent

ONCE = """
rules:
  - name: huge
    zones: [DMA32]
    orders: [9]
    unusable_index: {trigger: 0.9, clear: 0.5}
    sustain: 3
log:
  target: stderr
"""


# A daemon that polls every 30 s and waits on nothing else: it stays between polls until a signal.
CALM = "log:\n  target: stderr\npoll:\n  min_interval: 30\n  max_interval: 30\npsi:\n  wakeup: false\n"


def shrinkd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shrinkd", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=120
    )


def roots(tree: Tree) -> List[str]:
    return ["--proc-root", str(tree.proc), "--sys-root", str(tree.sys)]


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "kernel")


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["run", "--once", "--dry-run"],
        ["run", "--config", "/etc/x.yaml", "--debug"],
        ["run", "--config=/etc/x.yaml", "--proc-root=/p", "--sys-root", "/s"],
        ["--debug", "run", "--once"],
    ],
)
def test_the_fast_run_parser_agrees_with_argparse(argv: List[str]) -> None:
    fast = cli.parse_run(argv)
    assert fast is not None
    full = cli.build_parser().parse_args(argv)
    for name in ("config", "dry_run", "once", "debug", "proc_root", "sys_root"):
        assert getattr(fast, name) == getattr(full, name), name
    assert fast.handler is full.handler is cli.cmd_run


@pytest.mark.parametrize(
    "argv", [["status"], ["run", "--help"], ["run", "--config"], ["run", "--config", "--once"], ["run", "x"], []]
)
def test_anything_else_goes_to_argparse(argv: List[str]) -> None:
    assert cli.parse_run(argv) is None


def test_run_once_acts_without_sustain_and_exits(tree: Tree, tmp_path: Path) -> None:
    config = tmp_path / "once.yaml"
    config.write_text(ONCE)
    result = shrinkd("run", "--once", "--config", str(config), *roots(tree))
    assert result.returncode == 0, result.stderr
    lines = told(result.stderr)
    assert lines[1] == "shrinkd: huge:unusable_index triggered: node 0 zone DMA32 order 9 at 1.000"
    assert lines[2].startswith("shrinkd: compacted node 0 for huge:unusable_index (node 0 zone DMA32 order 9): ")
    assert lines[-1] == "shrinkd: stopped after 1 poll"
    assert (tree.sys / "devices/system/node/node0/compact").read_text() == "1"
    # The fake kernel does not change: still over the clear level, so reclaim followed.
    assert int((tree.sys / "fs/cgroup/memory.reclaim").read_text()) > 0


def test_run_once_exits_5_when_an_action_failed(tree: Tree, tmp_path: Path) -> None:
    config = tmp_path / "once.yaml"
    config.write_text(ONCE + "reclaim:\n  prefer: [memory_reclaim]\n")
    (tree.sys / "fs/cgroup/memory.reclaim").unlink()
    (tree.sys / "fs/cgroup/memory.reclaim").mkdir()
    result = shrinkd("run", "--once", "--config", str(config), *roots(tree))
    assert result.returncode == 5
    assert "reclaim failed: memory_reclaim: " in result.stderr


def test_run_without_buddyinfo_exits_4(tree: Tree) -> None:
    (tree.proc / "buddyinfo").unlink()
    result = shrinkd("run", "--once", *roots(tree))
    assert result.returncode == 4
    assert result.stderr == f"shrinkd: {tree.proc / 'buddyinfo'}: cannot read: No such file or directory\n"


def test_run_in_the_foreground_stops_on_sigterm(tree: Tree, tmp_path: Path) -> None:
    config = tmp_path / "calm.yaml"
    config.write_text(CALM)
    process = subprocess.Popen(
        [sys.executable, "-m", "shrinkd", "run", "--config", str(config), *roots(tree)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    first = told(process.stderr.readline())[0]  # started: the loop is up
    assert first.startswith("shrinkd: started: backends compact (nodes 0), memory_reclaim (")
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert told(process.stderr.read())[-1] == "shrinkd: stopped after 1 poll"


def test_run_carries_no_parser_it_does_not_need(tree: Tree, tmp_path: Path) -> None:
    config = tmp_path / "once.yaml"
    config.write_text(ONCE)
    code = (
        "import sys; from shrinkd import cli; "
        f"code = cli.main(['run', '--once', '--config', {str(config)!r}, '--proc-root', {str(tree.proc)!r}, "
        f"'--sys-root', {str(tree.sys)!r}]); "
        "print(code); print(' '.join(sorted(sys.modules)))"
    )
    # -S: no site, as the packaged launcher runs without the development install's editable-package
    # finder (which imports re); the sources come from the working directory, PyYAML (which the
    # child that reads the configuration imports) from where it is installed.
    import yaml

    env = {**os.environ, "PYTHONPATH": str(Path(yaml.__file__).resolve().parent.parent)}
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                            env=env)
    exit_code, modules = result.stdout.splitlines()[-2:]
    assert exit_code == "0", result.stdout + result.stderr
    loaded = set(modules.split())
    unwanted = {"argparse", "yaml", "shrinkd.configfile", "shrinkd.report", "psutil", "pyudev", "systemd", "ctypes"}
    # json and re: the state file is written without them (about 1.3 MB of resident memory).
    unwanted |= {"json", "re"}
    # contextlib (with collections and functools, about 660 kB) and math: not needed either.
    unwanted |= {"contextlib", "collections", "functools", "math", "typing", "enum"}
    assert "shrinkd.events" in loaded and loaded & unwanted == set()


def test_status_finds_a_daemon_systemd_did_not_start(tree: Tree, tmp_path: Path) -> None:
    # In the foreground (or from an init script) no RuntimeDirectory= makes the state's directory.
    run_dir = tmp_path / "run" / "shrinkd"
    (tmp_path / "run").mkdir()
    env = {**os.environ, "RUNTIME_DIRECTORY": str(run_dir)}
    config = tmp_path / "calm.yaml"
    config.write_text(CALM)
    process = subprocess.Popen(
        [sys.executable, "-m", "shrinkd", "run", "--config", str(config), *roots(tree)],
        cwd=REPO, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        for _ in range(200):
            if (run_dir / "status.json").exists():
                break
            time.sleep(0.05)
        status = subprocess.run(
            [sys.executable, "-m", "shrinkd", "status", "--json"], cwd=REPO, env=env, capture_output=True, text=True,
            check=False, timeout=60,
        )
        table = subprocess.run(
            [sys.executable, "-m", "shrinkd", "status"], cwd=REPO, env=env, capture_output=True, text=True,
            check=False, timeout=60,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert json.loads(status.stdout)["daemon"]["pid"] == process.pid
    assert f"Daemon: pid {process.pid}, up " in table.stdout


def test_compact_command(tree: Tree) -> None:
    result = shrinkd("compact", "--node", "0", *roots(tree))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("compacted via node0/compact in ")
    assert lines[1] == "Node 0, zone DMA: free 4.9 MiB -> 4.9 MiB (+0.0 MiB)"
    assert lines[7].startswith("Node 0, zone DMA32: free ")
    hog = (STATES / "6.1-hog" / "proc" / "buddyinfo").read_text().splitlines()[1].split()[4:]
    assert lines[8].split() == ["order", *map(str, range(11))]  # every order its own column
    assert lines[9].split()[2:] == hog  # "free before" row: the free blocks per order
    # The unusable free index per order before and after, as debugfs prints it.
    assert lines[11].split()[:4] == ["unusable", "before", "0.000", "0.991"]
    assert lines[12].split()[-1] == "1.000"
    assert (tree.sys / "devices/system/node/node0/compact").read_text() == "1"
    missing = shrinkd("compact", "--node", "3", *roots(tree))
    assert missing.returncode == 2
    assert missing.stderr == (
        f"shrinkd: --node: no {tree.sys / 'devices/system/node/node3/compact'} (nodes with one: 0)\n"
    )


def test_reclaim_command(tree: Tree) -> None:
    result = shrinkd("reclaim", "8M", "--backend", "memory_reclaim", *roots(tree))
    # The fake tree's vmstat does not move: nothing counted by pgsteal, less than asked (exit 6).
    assert result.returncode == 6, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(
        "reclaimed 0.0 MiB (counted from /proc/vmstat pgsteal_*) of 8.0 MiB asked, via memory_reclaim in "
    )
    assert result.stderr == "shrinkd: reclaim: freed 0.0 MiB of the 8.0 MiB asked\n"
    # Asked for in parts (8M / 8 first); the first took nothing, so there is no second.
    assert (tree.sys / "fs/cgroup/memory.reclaim").read_text() == "1048576"


def test_reclaim_refuses_a_backend_the_configuration_disables_unless_forced(tree: Tree) -> None:
    refused = shrinkd("reclaim", "8M", "--backend", "drop_caches", *roots(tree))
    assert refused.returncode == 2
    assert refused.stderr == (
        "shrinkd: --backend drop_caches: disabled by the configuration (<built-in defaults>: "
        "backends.drop_caches.enabled is false); add --force to use it anyway\n"
    )
    assert (tree.proc / "sys/vm/drop_caches").read_text() == ""
    forced = shrinkd("reclaim", "8M", "--backend", "drop_caches", "--force", *roots(tree))
    assert (tree.proc / "sys/vm/drop_caches").read_text() == "1"
    # Said before it runs: drop_caches cannot aim at a size; then measured by the free pages.
    assert forced.stderr.splitlines()[0] == (
        "drop_caches cannot aim at a size: it drops all clean page cache; what it freed is compared with the 8.0 MiB asked"
    )
    assert forced.stdout.startswith("reclaimed 0.0 MiB (the growth of free pages) of 8.0 MiB asked, via drop_caches in ")
    assert forced.returncode == 6


def test_reclaim_on_a_node_the_machine_lacks_is_a_usage_error(tree: Tree) -> None:
    result = shrinkd("reclaim", "8M", "--node", "3", *roots(tree))
    assert result.returncode == 2
    assert result.stderr == f"shrinkd: --node: no node 3 in {tree.proc / 'buddyinfo'} (nodes: 0)\n"
    assert (tree.sys / "fs/cgroup/memory.reclaim").read_text() == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reclaim", "8X"], "shrinkd: SIZE: expected bytes or a number with K, M or G (e.g. 64M), got '8X'\n"),
        (
            ["reclaim", "8M", "--backend", "swap"],
            f"shrinkd: --backend: expected one of {', '.join(RECLAIM_NAMES)}, got 'swap'\n",
        ),
        (
            ["reclaim", "8M", "--backend", "node_reclaim"],
            "shrinkd: reclaim backend node_reclaim is not available (available: memory_reclaim)\n",
        ),
    ],
)
def test_reclaim_command_errors(tree: Tree, args: List[str], message: str) -> None:
    result = shrinkd(*args, *roots(tree))
    assert result.stderr == message
    assert result.returncode == (5 if "not available" in message else 2)


def test_help_lists_the_subcommands() -> None:
    parser = cli.build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(actions[0].choices) == {
        "status", "run", "reclaim", "compact", "check-config", "record", "replay", "history", "plot", "doctor"
    }


def test_run_once_on_a_malformed_file_exits_3(tree: Tree) -> None:
    (tree.proc / "buddyinfo").write_text("Node 0, zone DMA32 1 2 x\n")
    result = shrinkd("run", "--once", *roots(tree))
    assert result.returncode == 3
    assert f"shrinkd: {tree.proc / 'buddyinfo'}:1: zone DMA32: expected an integer, got 'x'" in result.stderr


def test_record_stops_after_its_polls_and_leaves_a_trace(tree: Tree, tmp_path: Path) -> None:
    from shrinkd.trace import read_trace

    config = tmp_path / "record.yaml"
    config.write_text(ONCE.replace("sustain: 3", "sustain: 2") + "psi: {wakeup: false}\npoll: {min_interval: 0.1, max_interval: 0.2}\n")
    folder = tmp_path / "trace"
    folder.mkdir(mode=0o755)
    result = shrinkd("record", str(folder / "t.jsonl"), "--polls", "3", "--config", str(config), *roots(tree))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == f"recorded 3 polls to {folder / 't.jsonl'}"
    recorded = read_trace([str(folder / "t.jsonl")])
    assert len(recorded.polls) == 3
    # A dry run: the condition held from the second poll, its ladder told (compact, reclaim, compact again), nothing written.
    assert [e.kind for e in recorded.events] == [
        "started",
        "triggered",
        "would_compact",
        "would_reclaim",
        "would_compact",
        "stopped",
    ]
    assert (tree.sys / "devices/system/node/node0/compact").read_text() == ""
