"""The suite's own scheduling (tests/conftest.py): under pytest-xdist's --dist loadgroup every
file that boots guests is one group, the two board files one group between them, so that a
module's shared boot happens once and no two workers run the same board session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROBE = '''
import os
import pytest
pytestmark = pytest.mark.vm
def note(request):
    with open(os.environ["PROBE_IDS"], "a") as ids:
        ids.write(request.node.nodeid + "\\n")
def test_one(request):
    note(request)
def test_two(request):
    note(request)
'''


def test_guest_files_are_groups_and_the_board_files_share_one(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    for name in ("test_boards_vm.py", "test_lifecycle_vm.py", "test_other_vm.py"):
        (tests / name).write_text(PROBE)
    (tests / "test_plain.py").write_text("from test_other_vm import note\ndef test_plain(request):\n    note(request)\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    vm: boots a guest\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", "-s", "-q", "tests"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "PROBE_IDS": str(tmp_path / "ids")},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ids = sorted((tmp_path / "ids").read_text().split())
    assert ids == [
        "tests/test_boards_vm.py::test_one@boards",
        "tests/test_boards_vm.py::test_two@boards",
        "tests/test_lifecycle_vm.py::test_one@boards",
        "tests/test_lifecycle_vm.py::test_two@boards",
        "tests/test_other_vm.py::test_one@test_other_vm",
        "tests/test_other_vm.py::test_two@test_other_vm",
        "tests/test_plain.py::test_plain",
    ]
