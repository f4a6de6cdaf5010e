"""A board whose kernel has no CONFIG_HIBERNATION boots with no failed unit (SHRINKD_TEST_KERNELS=1 only).

The Debian package loads the shrinkmem module as shrinkd starts (shrinkd.service: Wants= and
After=modprobe@shrinkmem.service, no modules-load.d entry), and the module refuses a kernel
built without CONFIG_HIBERNATION. Every Debian kernel has hibernation, so this boots the test
kernel board-nohib of tests/testkernels.py (gcc, no hibernation, what systemd 252 and the
board image need built in, no initramfs) on the x86_64-6.1 board (tests/vm.py's Board), one
session of two boots on a fresh disk:

1. the image's Debian 6.1 kernel: both packages of tests/debs.py installed with apt from the
   run folder, as tests/boards.py installs them; the module, built on the host against
   board-nohib, put in /lib/modules/<its release>/extra/ with the kernel's modules.builtin
   (so that modprobe finds the built-in 9p the image's runner asks for), its configuration in
   /boot, and depmod run for that release;
2. board-nohib (vm.BootWith): what systemd, the kernel's log, shrinkd's journal, `shrinkd
   status --json` and `shrinkd doctor` say, recorded in the run folder; then a drop-in disables
   memory.reclaim and adds a reserve the guest can never meet, shrinkd reloads, and its
   journal is recorded again after a few of that rule's ladders.

The tests judge what boot 2 recorded: no failed unit at all; modprobe@shrinkmem.service ran
and succeeded (its ExecStart= has the `-` prefix); shrinkd is active; the kernel's log has the
module's refusal line exactly once; shrinkd's `started` event lists shrinkmem among the reclaim
backends it does not use, with the reason, and no `reclaim_unavailable` event follows (the
kernel has memory.reclaim, so reclaim stays possible: that event is for a daemon with no
reclaim backend at all); status and doctor say the module is not there. With memory.reclaim
disabled there is none: the first ladder that wants to reclaim says `reclaim_unavailable`
once, with why each backend is missing (shrinkmem's reason among them), and the next do not.

Not in the default run nor CI's (tests/conftest.py NEEDS_TEST_KERNELS): a cold build of the
kernel, then two boots under emulation. docs/boards.md gives the cost.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from tests import boards, testkernels, vm
from tests.debs import build_debs

pytestmark = pytest.mark.vm

TEST_KERNELS = os.environ.get("SHRINKD_TEST_KERNELS") == "1"
KERNELS = ["board-nohib"] if TEST_KERNELS else []
TARGET = "x86_64-6.1"
RUN_DIR = vm.VM_ROOT / "nohib-board"
REFUSAL = "refusing to load: this kernel is built without CONFIG_HIBERNATION"
NOT_LOADED = "no shrinkmem device (the module is not loaded)"
COOLDOWN = 20  # seconds between the ladders of the reserve rule that the second part of boot 2 adds
# Two boots under emulation, beside whatever else runs on the machine: generous (a bound, not a measure).
TIMEOUT = 3600.0

INSTALL = boards.PRELUDE + r"""
R=__RELEASE__
uname -r > "$OUT/boot1-uname.txt"
systemctl --failed --no-legend > "$OUT/boot1-failed.txt" 2>&1  # for comparison: the Debian kernel's boot
# DKMS builds for every kernel with headers in the image: leave the running one's only.
""" + boards.PURGE_NEWER_HEADERS + r"""cd "$OUT/debs"
apt-get install -y ./shrinkd_*.deb ./shrinkmem-dkms_*.deb < /dev/null > "$OUT/apt-install.log" 2>&1
echo $? > "$OUT/apt-install.rc"
cd "$REPO"
mkdir -p "/lib/modules/$R/extra"
cp "$OUT/kernel/shrinkmem.ko" "/lib/modules/$R/extra/"
cp "$OUT"/kernel/modules.* "/lib/modules/$R/"
cp "$OUT/kernel/config" "/boot/config-$R"
depmod "$R"
echo $? > "$OUT/depmod.rc"
cp "/lib/modules/$R/modules.dep" "$OUT/boot1-modules.dep"
sync
"""

CHECK = boards.PRELUDE + r"""
uname -r > "$OUT/uname.txt"
# shrinkd is ordered before multi-user.target, and this script runs after it; a reload the udev
# rule started is waited for (state, up to a minute).
state > "$OUT/is-active.txt"
systemctl --failed --no-legend > "$OUT/failed.txt" 2>&1
systemctl show modprobe@shrinkmem -p Result -p ActiveState > "$OUT/modprobe-unit.txt" 2>&1
journalctl -b -u modprobe@shrinkmem -o cat > "$OUT/modprobe-journal.txt" 2>&1
journalctl -k -b -o cat > "$OUT/kernel-log.txt" 2>&1
journalctl -b -u shrinkd -o json > "$OUT/shrinkd-journal.json" 2>&1
shrinkd status --json > "$OUT/status.json" 2> "$OUT/status.err"
echo $? > "$OUT/status.rc"
shrinkd doctor > "$OUT/doctor.txt" 2>&1
echo $? > "$OUT/doctor.rc"
shrinkd doctor --json > "$OUT/doctor.json" 2> "$OUT/doctor.err"
if [ -e /sys/module/shrinkmem ]; then echo loaded; else echo absent; fi > "$OUT/module.txt"
# When shrinkd became active, in microseconds since the kernel started (systemd-analyze waits for this script).
systemctl show shrinkd -p ActiveEnterTimestampMonotonic > "$OUT/shrinkd-active-at.txt" 2>&1
systemctl list-units --all --no-legend --state=failed > "$OUT/failed-all.txt" 2>&1
# Then a board with no reclaim backend at all: memory.reclaim disabled by a drop-in whose reserve
# (more than the guest's memory) is never met, so every ladder compacts and wants to reclaim.
mkdir -p /etc/shrinkd/conf.d
cat > /etc/shrinkd/conf.d/50-nohib-test.yaml <<EOF
backends: {memory_reclaim: {enabled: false}}
guards: {cooldown: __COOLDOWN__, cooldown_max: __COOLDOWN__}
poll: {max_interval: 5.0}
rules:
  - name: nohib-reserve
    zones: ["*"]
    orders: [huge]
    reserve: {size: 4G}
EOF
systemctl reload shrinkd
echo $? > "$OUT/reload.rc"
unavailable() { journalctl -b -u shrinkd -o cat SHRINKD_EVENT=reclaim_unavailable | grep -c .; }
for _ in $(seq 180); do [ "$(unavailable)" -ge 1 ] && break; sleep 1; done
# Two cooldowns more: the ladders that follow want reclaim too, and are not told again.
sleep $((2 * __COOLDOWN__ + 10))
journalctl -b -u shrinkd -o json > "$OUT/shrinkd-journal-reserve.json" 2>&1
systemctl is-active shrinkd > "$OUT/is-active-reserve.txt" 2>&1
"""


@dataclass(frozen=True)
class Session:
    kernel: testkernels.TestKernel
    out: Path
    boots: List[vm.Boot]
    console: str
    error: Optional[str]

    def check(self) -> Session:
        if self.error is not None:
            pytest.fail(self.error, pytrace=False)
        return self

    def text(self, name: str) -> str:
        return (self.out / name).read_text(errors="replace")

    def lines(self, name: str) -> List[str]:
        return [line for line in self.text(name).splitlines() if line.strip()]

    def json(self, name: str) -> Any:
        return json.loads(self.text(name))

    def events(self, kind: str, journal: str = "shrinkd-journal.json") -> List[Dict[str, Any]]:
        return [e for e in vm.journal_entries(self.out / journal) if e.get("SHRINKD_EVENT") == kind]


@functools.cache
def session(name: str) -> Session:
    """One session on a fresh x86_64-6.1 board disk: install on Debian's kernel, then boot `name`."""
    reason = testkernels.available() or vm.board_available(vm.TARGETS[TARGET])
    if reason is not None:
        pytest.fail(f"cannot run the board session: {reason}")
    kernel = testkernels.ensure(name)
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    RUN_DIR.mkdir(parents=True)
    started = time.monotonic()
    module = vm.build_module(RUN_DIR / "kmod-build", "", kdir=kernel.build_dir, make_vars=kernel.make_vars)
    files: Dict[str, str | bytes | Path] = {
        "kernel/shrinkmem.ko": module,
        "kernel/config": kernel.build_dir / ".config",
        **{f"kernel/{path.name}": path for path in kernel.module_index},
        **{f"debs/{path.name}": path for path in build_debs(RUN_DIR / "debs-built").values()},
    }
    error = None
    boots: List[vm.Boot] = []
    console = ""
    seconds = cpu_seconds = 0.0
    try:
        board = vm.Board(vm.TARGETS[TARGET], RUN_DIR)
        result = board.run(
            [INSTALL.replace("__RELEASE__", kernel.release), CHECK.replace("__COOLDOWN__", str(COOLDOWN))],
            files=files,
            timeout=TIMEOUT,
            boot_with={1: vm.BootWith(kernel=kernel.image)},
        )
        boots, console, seconds, cpu_seconds = result.boots, result.console, result.seconds, result.cpu_seconds
        for boot in boots:
            if boot.status != "0":
                error = f"boot {boot.index}: script status {boot.status}\n{boot.log[-3000:]}\n--- console (end)\n{console[-4000:]}"
        board.disk.unlink()
    except vm.VMError as problem:  # reported by every test here, without booting again
        error = f"{type(problem).__name__}: {problem}"
    (RUN_DIR / "session.json").write_text(
        json.dumps(
            {
                "kernel": kernel.release,
                "seconds": round(time.monotonic() - started, 1),
                "boot_seconds": round(seconds, 1),
                "qemu_cpu_seconds": round(cpu_seconds, 1),
                "script_started_uptime": [boot.started_uptime for boot in boots],
                "error": error,
            },
            indent=1,
        )
        + "\n"
    )
    return Session(kernel, RUN_DIR, boots, console, error)


@pytest.mark.parametrize("name", KERNELS)
def test_install_boot_put_the_module_in_the_test_kernels_tree(name: str) -> None:
    found = session(name).check()
    assert found.text("apt-install.rc").strip() == "0", found.text("apt-install.log")[-3000:]
    assert found.text("depmod.rc").strip() == "0"
    debian = found.text("boot1-uname.txt").strip()
    assert vm.TARGETS[TARGET].release([debian]) == debian  # the image's Debian kernel
    assert "extra/shrinkmem.ko:" in found.lines("boot1-modules.dep"), found.text("boot1-modules.dep")


@pytest.mark.parametrize("name", KERNELS)
def test_the_test_kernel_booted_without_hibernation(name: str) -> None:
    found = session(name).check()
    assert found.text("uname.txt").strip() == found.kernel.release
    assert found.kernel.config["CONFIG_HIBERNATION"] == "n"
    assert found.text("module.txt").strip() == "absent"


@pytest.mark.parametrize("name", KERNELS)
def test_no_unit_failed(name: str) -> None:
    found = session(name).check()
    assert found.lines("failed.txt") == [], found.text("failed.txt")
    assert found.lines("failed-all.txt") == [], found.text("failed-all.txt")


@pytest.mark.parametrize("name", KERNELS)
def test_modprobe_unit_succeeded_though_the_module_refused(name: str) -> None:
    found = session(name).check()
    fields = dict(line.split("=", 1) for line in found.lines("modprobe-unit.txt"))
    # A oneshot without RemainAfterExit: inactive once it ran, and a success.
    assert fields == {"Result": "success", "ActiveState": "inactive"}, fields


@pytest.mark.parametrize("name", KERNELS)
def test_shrinkd_is_active(name: str) -> None:
    found = session(name).check()
    assert found.text("is-active.txt").strip() == "active"


@pytest.mark.parametrize("name", KERNELS)
def test_the_kernel_says_the_refusal_once(name: str) -> None:
    found = session(name).check()
    ours = [line for line in found.lines("kernel-log.txt") if line.startswith("shrinkmem: ")]
    refusals = [line for line in ours if "refusing to load" in line]
    assert len(refusals) == 1, ours
    assert refusals[0].startswith(f"shrinkmem: {REFUSAL}"), refusals
    # Besides the refusal, at most the kernel's own notice that an out-of-tree module taints it.
    others = [line for line in ours if line not in refusals]
    assert all("loading out-of-tree module taints kernel" in line for line in others), others


@pytest.mark.parametrize("name", KERNELS)
def test_shrinkd_says_once_at_start_that_the_module_is_not_there(name: str) -> None:
    found = session(name).check()
    started = found.events("started")
    assert len(started) == 1, started
    event = started[0]
    backends = event["SHRINKD_BACKENDS"].split(",")
    assert "shrinkmem" not in backends
    unused = event["SHRINKD_RECLAIM_UNUSED"].split(" | ")
    assert f"shrinkmem: {NOT_LOADED}" in unused, unused
    assert "reclaim backends not used: " in event["MESSAGE"] and f"shrinkmem: {NOT_LOADED}" in event["MESSAGE"]
    # memory.reclaim is there (cgroup v2 with the memory controller, Linux 6.1): reclaim stays
    # possible, so no ladder can find it missing and the daemon never says reclaim_unavailable.
    assert "memory_reclaim" in backends, backends
    assert found.events("reclaim_unavailable") == []
    assert found.events("backends_changed") == []  # the module never appeared later


@pytest.mark.parametrize("name", KERNELS)
def test_status_says_the_module_is_not_there(name: str) -> None:
    found = session(name).check()
    assert found.text("status.rc").strip() == "0", found.text("status.err")
    status = found.json("status.json")
    daemon = status["daemon"]
    assert "shrinkmem" not in daemon["backends"] and "memory_reclaim" in daemon["backends"]
    reclaim = {entry["name"]: entry["why"] for entry in status["reclaim"]["backends"]}
    assert reclaim["shrinkmem"] == NOT_LOADED
    assert reclaim["memory_reclaim"] is None
    assert status["reclaim"]["from"].startswith("the running daemon")


@pytest.mark.parametrize("name", KERNELS)
def test_doctor_says_the_module_is_not_loaded_and_why(name: str) -> None:
    found = session(name).check()
    doctor = found.json("doctor.json")
    module = [check for check in doctor["checks"] if check["area"] == "module"]
    path = f"/lib/modules/{found.kernel.release}/extra/shrinkmem.ko"
    assert [(c["status"], c["what"]) for c in module] == [("warn", f"shrinkmem not loaded; installed at {path}")], module
    options = {c["what"]: c["status"] for c in doctor["checks"] if c["area"] == "options"}
    assert options.get("CONFIG_HIBERNATION=n") == "warn", options
    assert doctor["fail"] == 0, doctor
    assert found.text("doctor.rc").strip() == "0", found.text("doctor.txt")
    assert f"shrinkmem not loaded; installed at {path}" in found.text("doctor.txt")


@pytest.mark.parametrize("name", KERNELS)
def test_without_any_reclaim_backend_the_daemon_says_so_once(name: str) -> None:
    """memory.reclaim disabled (a drop-in, then a reload): each ladder of the reserve rule compacts and
    wants reclaim; the first says reclaim_unavailable with why each backend is missing, the next do not."""
    found = session(name).check()
    assert found.text("reload.rc").strip() == "0"
    assert found.text("is-active-reserve.txt").strip() == "active"
    journal = "shrinkd-journal-reserve.json"
    assert len(found.events("reloaded", journal)) == 1
    ladders = [e for e in found.events("compacted", journal) if e["SHRINKD_TRIGGER"].startswith("nohib-reserve:")]
    assert len(ladders) >= 2, ladders  # more than one ladder wanted to reclaim
    unavailable = found.events("reclaim_unavailable", journal)
    assert len(unavailable) == 1, unavailable
    event = unavailable[0]
    assert event["SHRINKD_BACKENDS"] == "compact"
    missing = event["SHRINKD_MISSING"].split(" | ")
    assert f"shrinkmem: {NOT_LOADED}" in missing and "memory_reclaim: disabled in the configuration" in missing, missing
    assert event["SHRINKD_TRIGGER"].startswith("nohib-reserve:") and event["PRIORITY"] == "4"  # warning
