"""The suite's own scheduling (tests/conftest.py): under pytest-xdist's --dist loadgroup every
file that boots guests is one group, and each board target one group across the two board
files, so that a module's shared boot happens once and no two workers run the same board
session; the longest groups start first."""

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


BOARD_PROBE = PROBE.replace("def test_one(request):", """@pytest.fixture(scope="module", params=["x86_64-6.1", "armhf-lpae-6.1"])
def board(request):
    return request.param
def test_one(request, board):""").replace("def test_two(request):", "def test_two(request, board):")


def run_probes(tmp_path: Path, files: dict[str, str], *pytest_args: str) -> list[str]:
    """Run the probe files (and a plain test) under the suite's conftest: the test ids, in the order they ran."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    for name, text in files.items():
        (tests / name).write_text(text)
    probe = Path(next(iter(files))).stem  # the plain test writes its id with the probes' helper
    (tests / "test_plain.py").write_text(f"from {probe} import note\ndef test_plain(request):\n    note(request)\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    vm: boots a guest\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args, "-s", "-q", "tests"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "PROBE_IDS": str(tmp_path / "ids")},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return (tmp_path / "ids").read_text().split()


def test_guest_files_are_groups_and_each_board_target_is_one_across_both_board_files(tmp_path: Path) -> None:
    ids = run_probes(tmp_path, {"test_boards_vm.py": BOARD_PROBE, "test_lifecycle_vm.py": BOARD_PROBE,
                                "test_other_vm.py": PROBE}, "-n", "2", "--dist", "loadgroup")
    assert sorted(ids) == [
        "tests/test_boards_vm.py::test_one[armhf-lpae-6.1]@boards-armhf-lpae-6.1",
        "tests/test_boards_vm.py::test_one[x86_64-6.1]@boards-x86_64-6.1",
        "tests/test_boards_vm.py::test_two[armhf-lpae-6.1]@boards-armhf-lpae-6.1",
        "tests/test_boards_vm.py::test_two[x86_64-6.1]@boards-x86_64-6.1",
        "tests/test_lifecycle_vm.py::test_one[armhf-lpae-6.1]@boards-armhf-lpae-6.1",
        "tests/test_lifecycle_vm.py::test_one[x86_64-6.1]@boards-x86_64-6.1",
        "tests/test_lifecycle_vm.py::test_two[armhf-lpae-6.1]@boards-armhf-lpae-6.1",
        "tests/test_lifecycle_vm.py::test_two[x86_64-6.1]@boards-x86_64-6.1",
        "tests/test_other_vm.py::test_one@test_other_vm",
        "tests/test_other_vm.py::test_two@test_other_vm",
        "tests/test_plain.py::test_plain",
    ]


def test_the_longest_guest_groups_start_first(tmp_path: Path) -> None:
    """Run in one process (no xdist), the order is the one the workers draw groups from."""
    # test_unit_vm is cheaper than the x86_64-6.1 board session, test_kernel_exact_vm cheaper still,
    # test_zz_vm is not in GROUP_SECONDS: it starts last among the guests, the plain test first.
    files = {name: BOARD_PROBE if name == "test_boards_vm.py" else PROBE
             for name in ("test_kernel_exact_vm.py", "test_boards_vm.py", "test_unit_vm.py", "test_zz_vm.py")}
    assert run_probes(tmp_path, files, "-p", "no:xdist") == [
        "tests/test_plain.py::test_plain",
        "tests/test_boards_vm.py::test_one[x86_64-6.1]",
        "tests/test_boards_vm.py::test_two[x86_64-6.1]",
        "tests/test_boards_vm.py::test_one[armhf-lpae-6.1]",
        "tests/test_boards_vm.py::test_two[armhf-lpae-6.1]",
        "tests/test_unit_vm.py::test_one",
        "tests/test_unit_vm.py::test_two",
        "tests/test_kernel_exact_vm.py::test_one",
        "tests/test_kernel_exact_vm.py::test_two",
        "tests/test_zz_vm.py::test_one",
        "tests/test_zz_vm.py::test_two",
    ]
