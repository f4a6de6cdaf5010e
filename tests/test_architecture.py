"""The shape of the package: an import graph without cycles, a docstring per module saying what
it owns, docs/architecture.md naming every module, one list of exit codes."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, List, Set

import pytest

from shrinkd import errors

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "shrinkd"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Set[str]:
    """Every shrinkd module `path` imports, anywhere in it (functions and TYPE_CHECKING blocks included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "shrinkd")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "shrinkd":
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
