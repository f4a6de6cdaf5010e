"""The Debian packages' life on a booted board: install, reboot, remove, reinstall, upgrade, reload, watchdog, purge.

In each board target's guest session (tests/boards.py; systemd as PID 1, the target's
Debian kernel and root file system): `apt install ./shrinkd_*.deb ./shrinkmem-dkms_*.deb`
(DKMS builds the module for the running kernel), a reboot, then each step of a package's
life (autopkgtest's run of debian/tests/control first), each judged here on its own. The
packages come from tests/debs.py (build_debs); the upgrade step needs a second, newer
build from it (its `version=` argument), autopkgtest the source package (build_source).
"""

from __future__ import annotations

import json
from typing import Dict

import pytest

from tests import boards
from tests.test_boards_vm import board_session
from tests.test_packaging import deb822_paragraphs
from tests.vm import REPO

pytestmark = pytest.mark.vm

TARGETS = [name for name in boards.targets() if name in boards.LIFECYCLE]


@pytest.fixture(scope="module", params=TARGETS)
def board(request: pytest.FixtureRequest) -> boards.Session:
    return board_session(request.param)


def shown(board: boards.Session, name: str) -> Dict[str, str]:
    return dict(line.split("=", 1) for line in board.text(name).splitlines() if "=" in line)


def test_install_builds_the_module_with_dkms_for_the_running_kernel(board: boards.Session) -> None:
    assert board.text("apt-install.rc").strip() == "0", board.text("apt-install.log")[-3000:]
    release = board.text("uname.txt").strip()
    log = board.text("apt-install.log")
    assert "Setting up shrinkmem-dkms" in log and "Setting up shrinkd" in log
    assert "shrinkmem/" in board.text("dkms-status.txt") and release in board.text("dkms-status.txt")
    assert board.text("active-after-install.txt").strip() == "active"


def test_after_a_reboot_the_module_is_loaded_and_shrinkd_active(board: boards.Session) -> None:
    modules = [line.split()[0] for line in board.text("modules-at-boot.txt").splitlines()]
    assert "shrinkmem" in modules, "the module was not loaded at boot"
    assert board.text("active-at-boot.txt").strip() == "active"


def test_autopkgtest_runs_every_test_of_the_source_package_and_they_pass(board: boards.Session) -> None:
    """autopkgtest with the board as its testbed (the null virt server): exit 0, and its summary lists each test of
    debian/tests/control as PASS, no other."""
    assert board.text("autopkgtest.rc").strip() == "0", board.text("autopkgtest.log")[-3000:]
    summary = [line.split() for line in board.text("autopkgtest/summary").splitlines() if line.strip()]
    results = {fields[0]: fields[1] for fields in summary}
    expected = [name for paragraph in deb822_paragraphs(REPO / "debian" / "tests" / "control")
                for name in paragraph["Tests"].split()]
    assert expected and results == {name: "PASS" for name in expected}, summary
    marks = board.marks()
    print(f"{board.name}: autopkgtest {marks['autopkgtest-end'] - marks['autopkgtest-start']:.0f} s")


def test_remove_then_install_makes_shrinkd_active_again(board: boards.Session) -> None:
    assert board.text("lc-remove.rc").strip() == "0", board.text("lc-remove.log")[-2000:]
    assert board.text("lc-active-after-remove.txt").strip() == "inactive"
    assert board.text("lc-reinstall.rc").strip() == "0", board.text("lc-reinstall.log")[-2000:]
    active = board.text("lc-active-after-reinstall.txt").strip()
    enabled = board.text("lc-enabled-after-reinstall.txt").strip()
    assert (active, enabled) == ("active", "enabled"), board.text("lc-reinstall.log")[-2000:]


def test_an_upgrade_keeps_the_edited_configuration(board: boards.Session) -> None:
    if "newer" not in boards.packages():
        pytest.fail("tests/debs.py build_debs() cannot build a newer version yet (no version= argument)")
    assert board.text("lc-conf-edit-applied.txt").strip() == "1", "the test's edit did not apply"
    assert board.text("lc-upgrade.rc").strip() == "0", board.text("lc-upgrade.log")[-2000:]
    before = board.text("lc-version-before-upgrade.txt").split()[1]
    after = board.text("lc-version-after-upgrade.txt").split()[1]
    assert before != after and after.endswith("+upgrade1"), (before, after)
    edited = board.text("lc-conf-edited.sha").split()[0]
    assert board.text("lc-conf-after-upgrade.sha").split()[0] == edited
    assert board.text("lc-active-after-upgrade.txt").strip() == "active"


def test_a_reload_with_a_broken_drop_in_keeps_the_configuration_and_logs_reload_failed(board: boards.Session) -> None:
    assert board.text("lc-reload-failed.rc").strip() == "0", "no reload_failed event"
    failed = json.loads(board.text("lc-reload-failed.json"))
    assert "99-broken.yaml" in failed["SHRINKD_ERROR"], failed
    after = shown(board, "lc-after-bad-reload.txt")
    assert after["ActiveState"] == "active" and after["MainPID"] == after["PID_BEFORE"], after
    # Still the daemon it was: a reload once the file is gone succeeds.
    assert board.text("lc-reloaded.rc").strip() == "0"


def test_a_stopped_daemon_is_restarted_by_the_watchdog(board: boards.Session) -> None:
    before, after = shown(board, "lc-before-stop.txt"), shown(board, "lc-after-stop.txt")
    assert after["ActiveState"] == "active" and after["MainPID"] not in ("0", after["PID_BEFORE"]), after
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert "Watchdog timeout" in board.text("lc-watchdog-journal.txt") or "watchdog" in board.text(
        "lc-watchdog-journal.txt"
    ).lower()


def test_purge_leaves_no_file_behind(board: boards.Session) -> None:
    assert board.text("lc-purge.rc").strip() == "0", board.text("lc-purge.log")[-2000:]
    before = set(board.text("fs-before.txt").splitlines())
    after = set(board.text("fs-after.txt").splitlines())
    assert sorted(after - before) == []
    assert board.text("lc-dkms-after-purge.txt").strip() == ""
