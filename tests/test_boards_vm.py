"""shrinkd on every board target: the module, the metrics and the daemon, as a board runs them.

Targets (tests/vm.py TARGETS): x86_64 Debian 6.1 and 6.12, arm64 Debian 6.1
(`-M virt -cpu max`: BTI and pointer authentication emulated), arm64 6.12 with 16 KiB
pages, 32-bit ARM armmp-lpae 6.1 with a HighMem zone. Each boots its Debian kernel on a
Debian root file system of its own architecture with systemd as PID 1; the packages
are installed with apt in the guest and DKMS builds the module there (why there, and
not cross-compiled on the host: it is how a board gets the module, the daemon and
lifecycle checks need the package installed anyway, and a cross build against a foreign
arch's Debian headers would need that arch's kbuild tools run under qemu-user).
One guest session per target (tests/boards.py); the tests below judge what it measured,
the same code for every target.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests import boards, vm
from tests.kernel_oracle import mismatches, parse_debugfs_index
from tests.test_kmod_vm import BAD_KERNEL_LOG, EXPECTED_IOCTL_ERRNO, EXPECTED_WRITE_ERRNO, reached_its_signal

pytestmark = pytest.mark.vm

FIXTURES = Path(__file__).parent / "fixtures" / "kernels"
TARGETS = boards.targets()


def board_session(name: str, ran: str = "marks.txt", what: str = "the guest") -> boards.Session:
    """Target `name`'s board session for a test module's fixture (each module picks its targets):
    the test fails when the target cannot boot here, or when the session never wrote `ran`."""
    reason = vm.board_available(vm.TARGETS[name])
    if reason is not None:
        pytest.fail(f"{name}: {reason}")
    found = boards.session(name)
    if found.error and not found.has(ran):
        pytest.fail(f"{name}: the session failed before {what} ran: {found.error}")
    return found


@pytest.fixture(scope="module", params=TARGETS)
def board(request: pytest.FixtureRequest) -> boards.Session:
    return board_session(request.param)


def kmod(board: boards.Session, section: str) -> Dict[str, Any]:
    results = board.json("kmod/results.json")
    data = results.get(section)
    if data is None:
        pytest.fail(f"{board.name}: guest_checks never ran section {section!r}:\n{board.text('kmod-log.txt')[-3000:]}")
    if "error" in data:
        pytest.fail(f"{board.name}: section {section!r} raised in the guest:\n{data['error']}")
    result: Dict[str, Any] = data
    return result


def page_kb(board: boards.Session) -> int:
    return int(board.text("pagesize.txt")) // 1024


def free_kb(snapshot: Dict[str, int], page: int) -> int:
    return snapshot["MemFree_kB"] + snapshot["pcp_count_pages"] * page


# ---------------------------------------------------------------- 1. the module


def test_the_packages_install_and_dkms_builds_for_the_running_kernel(board: boards.Session) -> None:
    assert board.text("apt-install.rc").strip() == "0", board.text("apt-install.log")[-3000:]
    release = board.text("uname.txt").strip()
    assert release == vm.TARGETS[board.name].release([release])
    status = board.text("dkms-status.txt")
    assert re.search(rf"^shrinkmem/[^,]+, {re.escape(release)}, [^:]+: installed", status, re.M), status


def test_module_loads_with_a_0600_device_node(board: boards.Session) -> None:
    load = kmod(board, "load")
    assert load["insmod_rc"] == 0, load["insmod_stderr"] + "\n".join(load["load_log"])
    assert load["char_device"] and load["mode"] == "0o600" and load["uid"] == 0 and load["gid"] == 0
    assert load["info"]["method"] in ("kprobe", "export")
    assert load["summary"]["method"] == load["info"]["method"]
    assert load["info"]["page_size"] == page_kb(board) * 1024
    assert any(f"shrinkmem: ready: shrink_all_memory() via {load['info']['method']}" in line for line in load["load_log"])
    modinfo = dict(re.findall(r"^(\w+):\s+(.*)$", load["modinfo"], re.M))
    assert modinfo["vermagic"].split()[0] == board.text("uname.txt").strip()


def test_echo_100_reclaims_at_least_80_mb_of_page_cache(board: boards.Session) -> None:
    cache = kmod(board, "cache")
    page = page_kb(board)
    assert cache["prepare"]["fs"] == ["ext4", "/dev/vdb"]
    assert cache["text_write"] == {"ret": 4}
    before, after = cache["text_before"], cache["text_after"]
    assert (before["Cached_kB"] - after["Cached_kB"]) / 1024 >= 80, cache
    assert (free_kb(after, page) - free_kb(before, page)) / 1024 >= 80, cache
    mb_pages = 1024 // page
    reclaimed = int(cache["text_summary"]["last_pages_reclaimed"])
    assert 100 * mb_pages <= reclaimed <= 110 * mb_pages, cache["text_summary"]
    result = cache["ioctl_result"]
    assert result["pages_requested"] == 100 * mb_pages
    assert 100 * mb_pages <= result["pages_reclaimed"] <= 110 * mb_pages, result


def test_bad_inputs_are_rejected_as_on_x86(board: boards.Session) -> None:
    bad = kmod(board, "bad_inputs")
    assert bad["writes"] == {name: {"errno": errno} for name, errno in EXPECTED_WRITE_ERRNO.items()}
    assert bad["ioctls"] == {name: {"errno": errno} for name, errno in EXPECTED_IOCTL_ERRNO.items()}
    assert bad["calls_before"] == bad["calls_after"]
    assert [line for line in bad["log"] if "shrinkmem" in line] == []
    fuzz = kmod(board, "fuzz")
    assert fuzz["unexpected"] == []
    assert fuzz["counts"].get("write:ok", 0) > 0 and fuzz["counts"].get("reclaim:ok", 0) > 0


def test_unprivileged_callers_are_refused(board: boards.Session) -> None:
    unpriv = kmod(board, "unprivileged")
    assert unpriv["nobody"]["open"] == "EACCES", unpriv
    # Requests need CAP_SYS_ADMIN; the INFO ioctl and read() answer the same question and need none.
    refused = {"open": "ok", "write": "EPERM", "reclaim": "EPERM", "info": "ok", "read": "ok"}
    assert unpriv["root_without_cap_sys_admin"] == {"uid": 0, "euid": 0, **refused}
    assert unpriv["nobody_device_0666"] == {"uid": 65534, "euid": 65534, **refused}
    assert unpriv["calls_before"] == unpriv["calls_mid"] == unpriv["calls_after_refusals"]
    # Root's own descriptor opened read-only reads; it cannot reclaim.
    read_only = {"write": "EBADF", "reclaim": "EBADF", "info": "ok", "read": "ok"}
    assert unpriv["root_read_only"] == {"uid": 0, "euid": 0, **read_only}


def test_concurrent_writers_all_complete_and_add_up(board: boards.Session) -> None:
    par = kmod(board, "parallel")
    writers, writes = par["writers"], par["writes"]
    for output in par["outputs"]:
        assert output["rc"] == 0 and output["results"] == [2] * writes, output
    calls = int(par["after"]["calls"]) - int(par["before"]["calls"])
    requested = int(par["after"]["pages_requested"]) - int(par["before"]["pages_requested"])
    assert calls == writers * writes
    assert requested == writers * writes * par["request_mb"] * (1024 // page_kb(board))


def test_a_request_killed_midway_returns_promptly(board: boards.Session) -> None:
    kill = kmod(board, "kill")
    mb_pages = 1024 // page_kb(board)
    killed = kill["killed"]
    assert killed["returncode"] == -9 and "returned" not in killed["stdout_rest"]
    summary = killed["summary"]
    assert summary["last_result"] == "-4", summary  # -EINTR: stopped between chunks
    assert int(summary["last_pages_requested"]) == kill["request_mb"] * mb_pages
    # Stopped part-way: the log says so and the count falls short of the request. (How much
    # shorter than the same request left alone is judged by tests/test_kmod_vm.py with a hog
    # sized for it; the boards' scaled-down hog leaves too little to swap for that comparison.)
    assert int(summary["last_pages_reclaimed"]) < int(summary["last_pages_requested"])
    assert any(f"requested {kill['request_mb']} MB" in line and "(interrupted)" in line for line in killed["log"])
    assert killed["exit_after_kill_s"] < 10.0, killed
    waiter = kill["waiter"]
    assert waiter["first_still_running"] and waiter["returncode"] == -9
    assert waiter["exit_after_kill_s"] < 10.0, waiter
    assert not any("requested 1 MB" in line for line in killed["log"]), killed["log"]


def test_handled_signals_leave_a_request_running_and_waits_restart(board: boards.Session) -> None:
    """As on x86 (tests/test_kmod_vm.py): a handled SIGTERM and SIGCHLD do not end a request, SIGKILL does
    (last_result 0 for the ioctl); a wait for the mutex restarts under SA_RESTART and is EINTR without it."""
    kill = kmod(board, "kill")
    term = kill["sigterm"]
    reached_its_signal(term)
    assert term["running_after_term"] and term["returncode"] == -9, term
    assert term["summary"]["last_result"] == "0" and int(term["summary"]["last_flags"]) == 1, term["summary"]
    chld = kill["sigchld"]
    reached_its_signal(chld)
    assert chld["ret"] == chld["length"] and len(chld["signals_at"]) == 1, chld
    restart = kill["restart"]
    assert restart["restarter_waiting"]["in_write"] and restart["eintr_waiting"]["in_write"], restart
    assert restart["eintr"]["errno"] == "EINTR" and restart["restarter"]["ret"] == 2, restart
    assert restart["calls"] == 2, restart


def test_rmmod_and_reload_with_max_mb(board: boards.Session) -> None:
    reload = kmod(board, "reload")
    assert reload["rmmod_rc"] == 0 and not reload["device_after_rmmod"]
    assert reload["insmod_rc"] == 0, reload["insmod_stderr"]
    assert reload["max_pages"] == 64 * (1024 // page_kb(board))
    assert reload["write_64"] == {"ret": 3} and reload["write_65"] == {"errno": "ERANGE"}
    assert reload["final_rmmod_rc"] == 0 and not reload["device_after_final_rmmod"]


def test_kernel_log_stays_clean(board: boards.Session) -> None:
    dmesg = board.json("kmod/results.json")["dmesg"] + board.text("dmesg-end.txt")
    assert "shrinkmem: ready" in dmesg
    bad = sorted({line for line in dmesg.splitlines() if BAD_KERNEL_LOG.search(line)})
    assert bad == [], "\n".join(bad)


# ---------------------------------------------------------------- 2. the metrics


def captured(board: boards.Session) -> List[Path]:
    assert board.text("capture.rc").strip() == "0", board.text("capture-log.txt")[-3000:]
    return sorted(p for p in (board.out / "capture").iterdir() if (p / "meta.txt").exists())


def test_captures_idle_and_fragmented_states(board: boards.Session) -> None:
    names = [p.name for p in captured(board)]
    assert f"{board.name}-idle" in names and f"{board.name}-frag1" in names, names


def test_every_index_of_status_json_equals_the_kernels(board: boards.Session) -> None:
    problems = {state.name: mismatches(state) for state in captured(board)}
    assert problems == {name: [] for name in problems}


def test_the_layout_is_the_kernels(board: boards.Session) -> None:
    """One order count in buddyinfo and in the kernel's indexes (12 with 16 KiB pages, 11 on
    x86_64 and arm64 4 KiB, 12 on armmp-lpae); 32-bit ARM with 2 GB: a HighMem zone."""
    state = next(p for p in captured(board) if p.name.endswith("-idle"))
    buddy = (state / "proc" / "buddyinfo").read_text()
    orders = {len(line.split()) - 4 for line in buddy.splitlines() if line.strip()}
    index = parse_debugfs_index((state / "debugfs/extfrag/unusable_index").read_text())
    assert {len(row) for row in index.values()} == orders and len(orders) == 1, buddy
    if page_kb(board) == 16:
        assert orders == {12}, buddy
    zones = {zone for _, zone in index}
    if vm.TARGETS[board.name].flavour == "armmp-lpae":
        assert "HighMem" in zones, buddy


# ---------------------------------------------------------------- 3. the daemon


def test_shrinkd_is_active_after_boot_with_ready_reached(board: boards.Session) -> None:
    assert board.text("active-at-boot.txt").strip() == "active"
    shown = dict(line.split("=", 1) for line in board.text("show-at-boot.txt").splitlines())
    assert int(shown["ActiveEnterTimestampMonotonic"]) > 0
    assert shown["StatusText"], "no STATUS= from sd_notify"
    started = [e for e in board.journal("journal-boot.json") if e.get("SHRINKD_EVENT") == "started"]
    assert started, board.text("journal-boot.json")[-2000:]


def events(board: boards.Session) -> List[Dict[str, Any]]:
    return [e for e in board.journal("journal-event.json") if "SHRINKD_EVENT" in e]


def told(board: boards.Session) -> str:
    """Every shrinkd event of the boot, a line each with its time and kind, and the workload's
    index samples at the end: what a failed wait needs to be read (a list's repr is cut short)."""
    lines = [f"{int(e['__MONOTONIC_TIMESTAMP']) / 1e6:9.2f} {e['SHRINKD_EVENT']}: {e.get('MESSAGE')}" for e in events(board)]
    tail = board.text("event-samples.txt").splitlines()[-6:] if (board.out / "event-samples.txt").exists() else []
    return "\n".join(["shrinkd's events:", *lines, "the last index samples:", *tail, *compaction_state(board)])


def compaction_state(board: boards.Session) -> List[str]:
    """The pageblocks by migrate type before the workload and at the end of the wait, and what
    compaction counted in between: why compactions that ran left the index where it was."""
    out = []
    for when in ("before", "after"):
        path = board.out / f"event-pagetypeinfo-{when}.txt"
        if path.exists():
            text = path.read_text()
            start = text.find("Number of blocks type")
            out += [f"pageblocks {when} the workload:", *text[start:].strip().splitlines()] if start >= 0 else []
    counters = [board.out / f"event-vmstat-{when}.txt" for when in ("before", "after")]
    if all(path.exists() for path in counters):
        before, after = (dict(line.split() for line in path.read_text().splitlines() if line.strip()) for path in counters)
        grew = {key: int(after[key]) - int(before.get(key, "0")) for key in after}
        out.append("compaction and migration during the wait: " + ", ".join(f"{k} +{v}" for k, v in grew.items() if v))
    return out


def test_the_workload_raises_an_event_with_its_fields(board: boards.Session) -> None:
    assert board.text("event-wait.rc").strip() == "0", told(board)
    order = board.text("huge-order.txt").strip()
    kinds = [e["SHRINKD_EVENT"] for e in events(board) if e.get("SHRINKD_RULE") == "board-huge"]
    assert "triggered" in kinds and "compacted" in kinds and "cleared" in kinds, kinds
    triggered = next(e for e in events(board) if e["SHRINKD_EVENT"] == "triggered")
    assert triggered["SHRINKD_ORDER"] == order
    assert triggered["SHRINKD_TRIGGER"] == "board-huge:unusable_index"
    assert float(triggered["SHRINKD_VALUE"]) >= boards.TRIGGER
    compacted = next(e for e in events(board) if e["SHRINKD_EVENT"] == "compacted")
    for field in ("SHRINKD_BACKEND", "SHRINKD_BEFORE", "SHRINKD_AFTER", "SHRINKD_DURATION_MS", "SHRINKD_ZONE"):
        assert field in compacted, compacted
    assert compacted["_SYSTEMD_UNIT"] == "shrinkd.service"


def samples(board: boards.Session) -> List[Dict[tuple[int, str], List[float]]]:
    chunks = board.text("event-samples.txt").split("T ")[1:]
    return [parse_debugfs_index(chunk.split("\n", 1)[1]) for chunk in chunks if "\n" in chunk]


def test_the_kernels_own_index_rose_over_the_trigger_then_fell_below_clear(board: boards.Session) -> None:
    order = int(board.text("huge-order.txt"))
    assert board.text("event-wait.rc").strip() == "0", told(board)
    cleared = board.json("event-cleared.json")
    key = (int(cleared["SHRINKD_NODE"]), cleared["SHRINKD_ZONE"])
    seen = [s[key][order] for s in samples(board) if key in s]
    assert max(seen) >= boards.TRIGGER, seen
    after = parse_debugfs_index(board.text("event-unusable-after.txt"))[key][order]
    assert after <= boards.CLEAR, (after, seen[-10:])
