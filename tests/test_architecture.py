"""The shape of the package: an import graph without cycles, a docstring per module saying what
it owns, docs/architecture.md naming every module, one list of exit codes."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from shrinkd import errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from shrinkd.config import Config

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "shrinkd"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, runtime: bool = False) -> Set[str]:
    """Every shrinkd module `path` imports, anywhere in it (functions and TYPE_CHECKING blocks included);
    with `runtime`, every module at all (the standard library's too) outside `if TYPE_CHECKING:` blocks."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skipped: Set[int] = set()
    if runtime:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                skipped.update(id(child) for inner in node.body for child in ast.walk(inner))
    found: Set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if runtime or alias.name.split(".")[0] == "shrinkd")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "__future__" or (not runtime and target.split(".")[0] != "shrinkd"):
                continue
            # `from . import metrics` imports the module shrinkd.metrics; `from .x import y` imports shrinkd.x.
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in GRAPH_NAMES else target)
    found.discard(name)
    return found


GRAPH_NAMES = {module_name(path) for path in MODULES}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Every cycle found by a depth-first search (each reported once, from where it was entered)."""
    found: List[List[str]] = []
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                found.append([*path[path.index(child) :], child])
            elif child not in state:
                visit(child)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_has_no_cycle() -> None:
    graph = {module_name(path): imports(path) & GRAPH_NAMES for path in MODULES}
    assert graph["shrinkd.daemon"] >= {"shrinkd.policy", "shrinkd.events", "shrinkd.procfs"}  # the walk sees imports
    assert cycles(graph) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_module_opens_with_what_it_owns(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring and len(docstring.split()) >= 5, f"{path.name}: no opening docstring"


def test_architecture_doc_names_every_module() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(PACKAGE)) for p in MODULES if f"`{p.relative_to(PACKAGE)}`" not in text]
    assert missing == [], f"docs/architecture.md does not name: {missing}"


def test_readme_exit_codes_are_the_code_s() -> None:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Exit codes") :]
    rows = re.findall(r"^\| (\d) \| (.+?) \|$", section, re.MULTILINE)
    assert [(int(code), meaning.replace("`", "")) for code, meaning in rows] == list(errors.EXIT_CODES)


# -- the layers: what docs/architecture.md's table says, held ---------------------------------

# Modules the standard library gives for talking to the system: none of them in a module whose I/O is "no".
SYSTEM_MODULES = {"os", "io", "subprocess", "socket", "_socket", "select", "shutil", "pathlib", "fcntl", "signal", "tempfile", "mmap"}


def table() -> Dict[str, str]:
    """docs/architecture.md's module table: each module named in a row's first cell -> the row's I/O cell."""
    text = (REPO / "docs" / "architecture.md").read_text()
    rows: Dict[str, str] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not line.startswith("| `"):
            continue
        for name in re.findall(r"`([\w/]+\.py)`", cells[0]):
            rows[name] = cells[2]
    return rows


def runtime_imports(path: Path) -> Set[str]:
    """Every module `path` imports outside `if TYPE_CHECKING:` blocks (standard library included)."""
    return imports(path, runtime=True)


PURE = sorted(name for name, io in table().items() if io == "no")


def test_the_table_names_pure_modules() -> None:
    # The core the map calls pure; a module leaving it must leave the table's "no" too.
    assert {"parse.py", "metrics.py", "view.py", "conditions.py", "policy.py", "config.py", "report.py"} <= set(PURE)


@pytest.mark.parametrize("name", PURE)
def test_a_pure_module_does_no_io_and_imports_only_pure_modules(name: str) -> None:
    path = PACKAGE / name
    pure = {module_name(PACKAGE / other) for other in PURE}
    imported = runtime_imports(path)
    assert sorted(m for m in imported if m.split(".")[0] == "shrinkd" and m not in pure) == []
    assert sorted(m for m in imported if m.split(".")[0] in SYSTEM_MODULES) == []
    calls = [
        node.func.id
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("open", "print", "input")
    ]
    assert calls == []


WRITES = ("os.open", "os.write", "os.replace", "os.rename", "os.unlink", "os.remove", "os.mkdir", "os.fsync", "os.fchmod")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_shrinkd_s_own_files_are_written_only_through_safefile(path: Path) -> None:
    """Kernel control files are written by procfs.Tunables; every other file shrinkd writes goes
    through safefile (the trace, the textfile, the state file, the kept vfs_cache_pressure). The
    modules allowed os.open and the like use it for what is not shrinkd's own file."""
    allowed = {
        "safefile.py": "the one way",
        "procfs.py": "kernel control files (Tunables) and reading /proc, /sys",
        "shrinkmem.py": "the device's ioctls",
        "kmsg.py": "reads /dev/kmsg",
        "configload.py": "reads the configuration; the child's pipe",
    }
    relative = str(path.relative_to(PACKAGE))
    if relative in allowed:
        return
    text = path.read_text()
    tree = ast.parse(text)
    used = {
        ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
    }
    assert sorted(used & set(WRITES)) == [], f"{relative} writes files itself"
    opened = [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"
        and any(isinstance(arg, ast.Constant) and isinstance(arg.value, str) and set(arg.value) & set("wax+") for arg in node.args[1:2])
    ]
    assert opened == [], f"{relative} opens a file for writing itself"


# -- what the long-running daemon holds in memory ------------------------------------------------

# Standard-library modules `shrinkd run` may load beyond a bare interpreter's: the journald and
# sd_notify sockets (_socket, not socket: that one imports enum and selectors), errno for the
# state file, select for the loop's wait, and the __future__ import every module starts with.
DAEMON_STDLIB = {"__future__", "_socket", "errno", "select"}
# shrinkd's modules for the other subcommands, and for reading and judging the configuration (done
# in a child process that exits): none of them stays in the daemon.
NOT_IN_DAEMON = {
    "shrinkd.commands", "shrinkd.configfile", "shrinkd.judgement", "shrinkd.doctor", "shrinkd.history", "shrinkd.plot",
    "shrinkd.replay", "shrinkd.report", "shrinkd.completion", "shrinkd.trace",
    "shrinkd.prom", "shrinkd.shrinkmem",
}


def test_the_daemon_loads_only_what_it_runs(tmp_path: Path) -> None:
    """`shrinkd run` on a fake kernel, with a configuration file (read by the child), compared with
    a bare interpreter: re, typing, enum, warnings, dataclasses, argparse, json, contextlib, PyYAML
    and the like (each from about 0.1 to 1.5 MB of resident memory) must not come back."""
    from .fakekernel import Tree

    tree = Tree(tmp_path / "kernel")
    config = tmp_path / "shrinkd.yaml"
    config.write_text("log:\n  target: stderr\nrules:\n  - name: huge\n    orders: [9]\n    unusable_index: {trigger: 0.9, clear: 0.5}\n")
    code = (
        "import sys\nfrom shrinkd import cli\n"
        f"code = cli.main(['run', '--once', '--dry-run', '--config', {str(config)!r}, "
        f"'--proc-root', {str(tree.proc)!r}, '--sys-root', {str(tree.sys)!r}])\n"
        "print(code, ' '.join(sorted(sys.modules)))\n"
    )
    # -S: the development install's editable finder (site) imports re itself; the child that reads
    # the file finds PyYAML through PYTHONPATH instead.
    import yaml

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(Path(yaml.__file__).parent.parent)]))
    # The bare interpreter's own: with site, it has imported os (and stat, posixpath, ...) too.
    bare = subprocess.run([sys.executable, "-S", "-c", "import os, sys, time; print(' '.join(sys.modules))"],
                          cwd=REPO, capture_output=True, text=True, check=True, env=env)
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True, check=True, env=env)
    status, _, names = result.stdout.splitlines()[-1].partition(" ")
    loaded = set(names.split())
    assert status == "0", result.stderr
    assert {"shrinkd.daemon", "shrinkd.policy", "shrinkd.configload"} <= loaded  # it did run
    stdlib = {name for name in loaded - set(bare.stdout.split()) if not name.startswith("shrinkd")}
    assert sorted(stdlib - DAEMON_STDLIB) == []
    assert sorted(loaded & NOT_IN_DAEMON) == []


# shrinkd's modules that only acting runs: imported by the first action's event (effect), the first
# reclaim (stepped), the first reclaim after a compaction, or at start when a run that ended during
# a reclaim left vm.vfs_cache_pressure raised (cache_pressure).
ACTING_ONLY = {"shrinkd.actions.stepped", "shrinkd.actions.cache_pressure", "shrinkd.effect"}

ACT_ONCE = """
import sys
from pathlib import Path
from tests.fakekernel import ScriptedKernel, Tree
from tests.test_daemon import daemon

tree = Tree(Path(sys.argv[1]) / "kernel")
run = Path(sys.argv[1]) / "run"
run.mkdir(mode=0o755)
kernel = ScriptedKernel(tree.proc, {"compact": ["6.1-frag3"], "memory.reclaim": ["6.1-frag1"]}, {"memory.reclaim": 23456})
d, _, clock = daemon(tree, kernel, state_path=str(run / "status.json"))
d.start()
d.tick()  # over the trigger, 1 of 2 polls: nothing done yet
idle = sorted(name for name in sys.modules if name.startswith("shrinkd"))
clock.now += 1
d.tick()  # 2 of 2: compaction, then a reclaim with vm.vfs_cache_pressure raised
d.close()
print(repr((idle, sorted(sys.modules), d.events, [name for name, _ in kernel.writes])))
"""


def test_acting_code_is_loaded_by_the_first_action_never_by_the_idle_daemon(tmp_path: Path) -> None:
    """A daemon that acts (not a dry run), in a fresh interpreter: started, with its state directory,
    and polled without acting, it holds none of ACTING_ONLY; its first ladder loads them and runs
    as it always did (compacted, then reclaimed with vfs_cache_pressure raised and put back)."""
    import ast

    result = subprocess.run([sys.executable, "-c", ACT_ONCE, str(tmp_path)], cwd=REPO, capture_output=True,
                            text=True, check=False, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr
    idle, loaded, events, writes = ast.literal_eval(result.stdout.splitlines()[-1])
    assert {"shrinkd.daemon", "shrinkd.actions", "shrinkd.policy"} <= set(idle)  # it did start and poll
    assert sorted(set(idle) & ACTING_ONLY) == []
    assert events == ["started", "triggered", "compacted", "reclaimed"]
    assert writes == ["compact", "vfs_cache_pressure", "memory.reclaim", "vfs_cache_pressure"]
    assert sorted(ACTING_ONLY - set(loaded)) == []


def test_the_configuration_is_checked_in_the_child_that_reads_it(tmp_path: Path) -> None:
    from shrinkd import configload

    path = tmp_path / "shrinkd.yaml"
    path.write_text("poll:\n  max_interval: 30\n")
    seen: List[int] = []

    def check(config: Config) -> Tuple[int, List[str]]:
        seen.append(os.getpid())  # in the child: not seen here
        return os.getpid(), list(config.sources)

    config, (pid, sources) = configload.load_checked([path], check)
    assert config == configload.load([path]) and sources == [str(path)]
    assert pid != os.getpid() and seen == []
    assert configload.load_checked([path], None) == (config, None)
