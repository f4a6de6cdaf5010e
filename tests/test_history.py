"""shrinkd history: a journal written by the daemon in a Debian 6.1 guest (tests/fixtures/journal/, recorded
by tests/traces.py, with journalctl's own JSON export of it as the expected values), dates, and the one-line
errors. tests/test_daemon_vm.py also reads the journal of its own guest, in the guest and on the host."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from shrinkd import history
from shrinkd.errors import UsageError

from .fakekernel import REPO

JOURNAL = REPO / "tests" / "fixtures" / "journal"


def shrinkd(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shrinkd", *args], capture_output=True, text=True, check=False, cwd=REPO, env=env)


def exported() -> List[Dict[str, Any]]:
    """journalctl -o json SYSLOG_IDENTIFIER=shrinkd, as the guest printed it: the entries with an event."""
    lines = (JOURNAL / "journal.json").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if "SHRINKD_EVENT" in entry]


def test_the_events_are_those_journalctl_exports() -> None:
    events = history.read(str(JOURNAL / "files"))
    expected = exported()
    assert len(events) == len(expected) > 0
    for event, entry in zip(events, expected):
        assert event["event"] == entry["SHRINKD_EVENT"]
        assert event["message"] == entry["MESSAGE"]
        assert event["time"] == pytest.approx(int(entry["__REALTIME_TIMESTAMP"]) / 1e6)
        for key, value in entry.items():
            if key.startswith("SHRINKD_") and key != "SHRINKD_EVENT":
                assert str(event[key[len("SHRINKD_"):].lower()]) == value


def test_totals_count_what_ran() -> None:
    events = history.read(str(JOURNAL / "files"))
    expected = exported()
    totals = history.totals(events)
    reclaimed = [e for e in expected if e["SHRINKD_EVENT"] == "reclaimed" and e.get("SHRINKD_DRY_RUN") != "1"]
    assert totals["reclaims"] == len(reclaimed) >= 1
    assert totals["reclaimed_pages"] == sum(int(e["SHRINKD_PAGES_RECLAIMED"]) for e in reclaimed)
    ran = [e for e in expected if e["SHRINKD_EVENT"] in ("compacted", "reclaimed") and e.get("SHRINKD_DRY_RUN") != "1"]
    assert totals["compactions"] == sum(e["SHRINKD_EVENT"] == "compacted" for e in ran) >= 1
    assert any(e.get("SHRINKD_DRY_RUN") == "1" for e in expected)  # the dry run's are left out
    changes = [float(e["SHRINKD_AFTER"]) - float(e["SHRINKD_BEFORE"]) for e in ran]
    assert totals["mean_change"] == pytest.approx(sum(changes) / len(changes))


def test_the_table_and_json() -> None:
    result = shrinkd("history", "--directory", str(JOURNAL / "files"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["time", "event", "where", "action", "backend", "value", "reclaimed", "ms"]
    rows = lines[1 : lines.index("")]
    assert [row.split()[2] for row in rows] == [e["SHRINKD_EVENT"] for e in exported()]
    reclaim = next(row for row in rows if row.split()[2] == "reclaimed")
    assert "node 0 DMA32 order 9" in reclaim and " -> " in reclaim and " MiB" in reclaim
    document = json.loads(shrinkd("history", "--json", "--directory", str(JOURNAL / "files")).stdout)
    assert [e["event"] for e in document["events"]] == [e["SHRINKD_EVENT"] for e in exported()]
    assert document["totals"] == json.loads(json.dumps(history.totals(history.read(str(JOURNAL / "files")))))


def test_since_leaves_out_what_came_before() -> None:
    expected = exported()
    middle = int(expected[len(expected) // 2]["__REALTIME_TIMESTAMP"]) / 1e6
    later = history.read(str(JOURNAL / "files"), since=middle)
    assert [e["message"] for e in later] == [e["MESSAGE"] for e in expected if int(e["__REALTIME_TIMESTAMP"]) / 1e6 >= middle]
    assert 0 < len(later) < len(expected)
    result = shrinkd("history", "--directory", str(JOURNAL / "files"), "--since", "2099-01-01")
    assert (result.returncode, result.stderr) == (4, f"shrinkd: {JOURNAL / 'files'}: no shrinkd events since 2099-01-01\n")


def test_a_journal_without_shrinkd_events_is_one_line(tmp_path: Path) -> None:
    result = shrinkd("history", "--directory", str(tmp_path))
    assert (result.returncode, result.stderr) == (4, f"shrinkd: {tmp_path}: no shrinkd events\n")


def test_without_systemd_python_the_error_names_the_package(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    (shim / "systemd").mkdir(parents=True)
    (shim / "systemd" / "__init__.py").write_text("raise ModuleNotFoundError('not installed', name='systemd')\n")
    result = shrinkd("history", env={"PYTHONPATH": f"{shim}:{REPO}", "PATH": "/usr/bin:/bin"})
    assert (result.returncode, result.stderr) == (
        2,
        "shrinkd: shrinkd history needs the Python module systemd.journal: install Debian's python3-systemd "
        "(apt install python3-systemd) or systemd-python from PyPI (pip install systemd-python)\n",
    )


def test_a_module_debian_installed_for_another_python_or_failing_to_import(tmp_path: Path) -> None:
    # A virtualenv without --system-site-packages does not see Debian's python3-systemd.
    (tmp_path / "dist-packages" / "systemd").mkdir(parents=True)
    gone = ModuleNotFoundError("No module named 'systemd'", name="systemd")
    error = history.missing_package(
        "shrinkd history", "systemd.journal", "python3-systemd", "systemd-python", gone, [str(tmp_path / "dist-packages")]
    )
    assert str(error) == (
        f"shrinkd history needs the Python module systemd.journal: Debian's python3-systemd is installed "
        f"({tmp_path / 'dist-packages' / 'systemd'}) but this Python ({sys.executable}) does not see it: run shrinkd "
        "with the system's python3, make the virtualenv with --system-site-packages, or install systemd-python into "
        "it (pip install systemd-python)"
    )
    assert "apt install python3-systemd" in str(
        history.missing_package("shrinkd history", "systemd.journal", "python3-systemd", "systemd-python", gone, [])
    )
    # Installed, but its C part cannot load: say so, not "install it".
    broken = ImportError("libsystemd.so.0: cannot open shared object file")
    assert str(history.missing_package("shrinkd history", "systemd.journal", "python3-systemd", "systemd-python", broken)) == (
        "shrinkd history: the Python module systemd.journal is installed but cannot be imported: "
        "libsystemd.so.0: cannot open shared object file"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", time.mktime((2024, 5, 1, 0, 0, 0, 0, 0, -1))),
        ("2024-05-01 12:30", time.mktime((2024, 5, 1, 12, 30, 0, 0, 0, -1))),
        ("2024-05-01T12:30:15", time.mktime((2024, 5, 1, 12, 30, 15, 0, 0, -1))),
        ("-2h", 1e9 - 7200),
        ("3d ago", 1e9 - 3 * 86400),
        ("90m ago", 1e9 - 5400),
        ("now", 1e9),
        ("today", time.mktime((*time.localtime(1e9)[:3], 0, 0, 0, 0, 0, -1))),
    ],
)
def test_since(text: str, expected: float) -> None:
    assert history.parse_since(text, now=1e9) == expected


@pytest.mark.parametrize("text", ["last week", "2024-13-01", "-2y", ""])
def test_since_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--since: expected a date"):
        history.parse_since(text)
