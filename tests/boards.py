"""shrinkd on each board target, the way a board runs it: one guest session per target.

A session boots the target (tests/vm.py Board: the target's Debian kernel, a Debian
root file system of its architecture, systemd as PID 1) twice:

1. install: list the file system, `apt-get install ./shrinkd_*.deb ./shrinkmem-dkms_*.deb`
   (the packages from tests/debs.py; DKMS builds the module in the guest for the running
   kernel), write a drop-in with a rule at this kernel's huge-page order; reboot.
2. checks, in the order that keeps them apart:
   - as booted: shrinkd active (READY reached), the module loaded, boot-to-READY time;
   - the daemon: a fragmenting workload, the rule's events in the journal, the kernel's
     own unusable index (debugfs, sampled every second) before and after;
   - the module: shrinkd stopped and the module removed, tests/kmod/guest_checks.py
     loads the DKMS-built module and runs every check of the x86 suite (sizes scaled
     down for emulation: a smaller page-cache file, kill request and fuzz);
   - the metrics: tests/capture.py captures idle and fragmented states with the
     kernel's debugfs indexes (shrinkd stopped, so nothing moves memory meanwhile);
   - the package lifecycle (x86_64 targets, LIFECYCLE): autopkgtest (debian/tests/control, the
     board itself the testbed: the null virt server), reload with a broken drop-in, SIGSTOP and the
     watchdog, remove then install, upgrade with an edited config, purge, the file system again.

Everything the guest measured lands in the session's run folder; tests/test_boards_vm.py
and tests/test_lifecycle_vm.py judge it. Sessions of different targets run side by
side (BOARD_JOBS at a time: 2, the machine's cores, or 1 in a pytest-xdist worker, whose
peer runs a guest too). Without SHRINKD_BOARDS, arm64-6.1 and x86_64-6.12 run (DEFAULT);
SHRINKD_BOARDS=all runs every target, SHRINKD_BOARDS=NAME,... the ones named. `python -m tests.boards table` prints the docs/boards.md table from the
last sessions' figures.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from tests import vm
from tests.debs import build_debs, build_source

REPO = vm.REPO
# The board sessions' run folders, kept until the next run (figures for the docs table).
BOARDS_DIR = vm.VM_ROOT / "boards"
ORDER = ("arm64-16k-6.12", "arm64-6.1", "armhf-lpae-6.1", "x86_64-6.1", "x86_64-6.12")
# What the test suite (and CI) runs without SHRINKD_BOARDS, chosen for coverage: every target
# would take 73 minutes on two cores (docs/boards.md, Cost), more than CI's aim of 60. One
# arm64 board (the module's kprobe path on arm64, DKMS against arm64 headers) and one x86_64
# board with the package lifecycle and 6.12. The arm64 board is the 4 KiB one: on the 16 KiB
# board a compaction under the workload leaves the order-11 index anywhere from 0.30 to over
# 0.6 (docs/boards.md, "The event at order 11"), so whether it clears within the wait is
# chance; a CI run at d9e9c8c had 0.726 -> 0.686, and the thrash guard then held reclaim off.
# arm64-16k-6.12, x86_64-6.1 and armhf-lpae-6.1 run with SHRINKD_BOARDS=all.
DEFAULT = ("arm64-6.1", "x86_64-6.12")
# Targets whose sessions run the package lifecycle (tests/test_lifecycle_vm.py judges it)
# and list the file system before install and after purge for it.
LIFECYCLE = ("x86_64-6.1", "x86_64-6.12")
# The daemon's rule, at the kernel's huge-page order: the workload leaves most free
# memory in blocks below it, compaction brings it back. The levels are the built-in
# huge-page rule's (config/shrinkd.yaml; tests/test_config.py holds them equal). With 16 KiB
# pages compaction leaves the index at 0.30 to 0.44 while the workload holds (see
# docs/boards.md): the per-CPU free lists keep up to the zone's low watermark (5,300 to
# 5,900 pages, 83 to 92 MB) scattered through the free blocks, and their floor is not
# something compaction or a reclaim moves.
TRIGGER = 0.6
CLEAR = 0.4
# The module checks, scaled for software emulation: the cache file read into the page
# cache, the requests stopped part-way and the anonymous memory they swap to zram.
CACHE_MB = 400
KILL_MB = 600
HOG_MB = 400
FUZZ_CALLS = 400
# Share of MemAvailable the daemon test's fragmenter touches (every other page then freed).
WORKLOAD_PCT = 85


def jobs() -> int:
    """Sessions at once: 2 (the machine's cores), or 1 in a pytest-xdist worker, whose peer runs a guest too."""
    default = "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2"
    return max(1, int(os.environ.get("BOARD_JOBS", default)))


def targets() -> List[str]:
    wanted = os.environ.get("SHRINKD_BOARDS")
    if not wanted:
        return list(DEFAULT)
    if wanted.strip() == "all":
        return list(ORDER)
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in vm.TARGETS]
    if unknown:
        raise ValueError(f"SHRINKD_BOARDS: unknown targets {unknown} (known: {sorted(vm.TARGETS)})")
    return names


def capture_plan(name: str) -> str:
    from tests.capture import board_plan, plan_json

    return plan_json(board_plan(name))


# The start of each boot's script (INSTALL, CHECKS).
PRELUDE = r"""
set -u
exec 2>&1
export DEBIAN_FRONTEND=noninteractive
mark() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >> "$OUT/marks.txt"; }
# shrinkd's state once no job of its own is running: a start or reload in flight is waited for
# (up to a minute). The udev rule reloads shrinkd whenever the module's device appears, so at
# boot a reload can still be running when this script starts.
state() {
    local s
    for _ in $(seq 60); do
        s=$(systemctl is-active shrinkd)
        case "$s" in activating | reloading | deactivating) sleep 1 ;; *) break ;; esac
    done
    echo "$s"
}
"""

# A board carries the headers of the kernel it runs. The image holds every kernel of its
# architecture, and DKMS builds for the newest installed one too: purge newer kernels' headers.
# (Before the packages are installed; tests/test_nohib_board_vm.py's install boot uses it too.)
PURGE_NEWER_HEADERS = r"""newer=""
for build in /lib/modules/*/build; do
    release=$(basename "$(dirname "$build")")
    dpkg --compare-versions "$release" gt "$(uname -r)" && newer="$newer linux-headers-$release"
done
if [ -n "$newer" ]; then
    apt-get purge -y $newer < /dev/null > "$OUT/purge-newer-headers.log" 2>&1
    apt-get autoremove --purge -y < /dev/null >> "$OUT/purge-newer-headers.log" 2>&1
fi
"""

INSTALL = PRELUDE + r"""
mark install-start
uname -r > "$OUT/uname.txt"
getconf PAGESIZE > "$OUT/pagesize.txt"
# A board carries the headers of the kernel it runs. The image holds every kernel of its
# architecture, and DKMS builds for the newest installed one too: purge newer kernels' headers.
""" + PURGE_NEWER_HEADERS + r"""mark newer-headers-purged
if [ "__LIFECYCLE__" = 1 ]; then $PY tests/board_guest.py fs-list > "$OUT/fs-before.txt"; fi
mark fs-listed
cd "$OUT/debs"
apt-get install -y ./shrinkd_*.deb ./shrinkmem-dkms_*.deb < /dev/null > "$OUT/apt-install.log" 2>&1
echo $? > "$OUT/apt-install.rc"
cd "$REPO"
mark installed
dkms status > "$OUT/dkms-status.txt" 2>&1
state > "$OUT/active-after-install.txt"
order=$($PY tests/board_guest.py huge-order)
echo "$order" > "$OUT/huge-order.txt"
mkdir -p /etc/shrinkd/conf.d
# The rule names the order by what it is for; the test checks it resolved to $order.
# Polls at least every 10 s (the default lets an idle daemon sleep 2 minutes). No back-off
# (cooldown_max = cooldown): on 6.12 a compaction can leave the index just over the clear
# level (0.459 in one session), and in a CI run the ladder's compaction, reclaim and
# compaction left it over 0.4 twice, the back-off put the next ladder 240 s later and the
# 300 s wait ran out. A retry every minute is what the wait needs; tests/test_policy.py
# checks the back-off itself.
cat > /etc/shrinkd/conf.d/50-board-test.yaml <<EOF
poll: {max_interval: 10.0}
guards: {cooldown: 60, cooldown_max: 60}
rules:
  - name: board-huge
    zones: ["*"]
    orders: [huge]
    min_zone_size: 64M
    unusable_index: {trigger: __TRIGGER__, clear: __CLEAR__}
    sustain: 1
    reclaim: true
EOF
mark install-end
"""

CHECKS = PRELUDE + r"""
cursor() { journalctl -n 1 --show-cursor -q -o cat | sed -n "s/^-- cursor: //p"; }
event() { $PY tests/board_guest.py wait-event "$@"; }
show() { systemctl show shrinkd -p ActiveState -p SubState -p MainPID -p NRestarts -p Result -p StatusText; }
mark checks-start
# ---- as booted
state > "$OUT/active-at-boot.txt"
systemctl show shrinkd -p ActiveEnterTimestampMonotonic -p ExecMainStartTimestampMonotonic -p NRestarts \
    -p StatusText > "$OUT/show-at-boot.txt"
systemd-analyze time > "$OUT/analyze.txt" 2>&1
cat /proc/modules > "$OUT/modules-at-boot.txt"
cat /proc/cmdline > "$OUT/cmdline.txt"
journalctl -b -u shrinkd -o json --no-pager > "$OUT/journal-boot.json"
mark booted-recorded

# ---- the daemon: a workload fragments memory, shrinkd acts, the kernel's index falls
C=$(cursor)
# What compaction has to work with: the pageblocks' migrate types, and its own counters.
cat /proc/pagetypeinfo > "$OUT/event-pagetypeinfo-before.txt" 2>&1
grep -E '^(compact_|pgmigrate_)' /proc/vmstat > "$OUT/event-vmstat-before.txt"
( while :; do echo "T $(cut -d' ' -f1 /proc/uptime)"; cat /sys/kernel/debug/extfrag/unusable_index; sleep 1; done ) \
    > "$OUT/event-samples.txt" 2>&1 &
SAMPLER=$!
avail=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
mb=$((avail * __WORKLOAD_PCT__ / 100 / 1024))
echo "$mb" > "$OUT/event-workload-mb.txt"
rm -f /tmp/frag-ready
$PY -c 'import sys; from pathlib import Path; from tests.capture import fragment; fragment(int(sys.argv[1]), Path(sys.argv[2]))' \
    "$mb" /tmp/frag-ready &
FRAG=$!
for _ in $(seq 600); do [ -e /tmp/frag-ready ] && break; sleep 1; done
mark workload-ready
event cleared 300 "$C" > "$OUT/event-cleared.json"; echo $? > "$OUT/event-wait.rc"
mark event-cleared
sleep 2
cat /sys/kernel/debug/extfrag/unusable_index > "$OUT/event-unusable-after.txt"
cat /proc/pagetypeinfo > "$OUT/event-pagetypeinfo-after.txt" 2>&1
grep -E '^(compact_|pgmigrate_)' /proc/vmstat > "$OUT/event-vmstat-after.txt"
kill $SAMPLER $FRAG; wait $SAMPLER $FRAG 2>/dev/null
# The boot's whole shrinkd journal: the rule's events are told apart by SHRINKD_RULE (a cursor
# taken before the workload lost the first of them once).
journalctl -b -u shrinkd -o json --no-pager > "$OUT/journal-event.json"

# ---- the module: every check of the x86 suite, on the module DKMS built
mark kmod-start
systemctl stop shrinkd
rmmod shrinkmem; echo $? > "$OUT/rmmod-before-checks.rc"
KO=$(modinfo -n shrinkmem)
echo "$KO" > "$OUT/ko-path.txt"
mkdir -p "$OUT/kmod"
$PY tests/kmod/guest_checks.py --ko "$KO" --out "$OUT/kmod" --data-disk /dev/vdb \
    --hog-mb __HOG_MB__ --kill-mb __KILL_MB__ --fuzz-calls __FUZZ_CALLS__ > "$OUT/kmod-log.txt" 2>&1
echo $? > "$OUT/kmod.rc"
mark kmod-end

# ---- the metrics: idle and fragmented captures with the kernel's own indexes
$PY -m tests.capture guest '__PLAN__' "$OUT/capture" > "$OUT/capture-log.txt" 2>&1
echo $? > "$OUT/capture.rc"
mark capture-end

# ---- the package lifecycle (LIFECYCLE targets only)
if [ "__LIFECYCLE__" != 1 ]; then
    journalctl -b -o short-monotonic --no-pager > "$OUT/journal-all.txt"
    dmesg > "$OUT/dmesg-end.txt"
    # The next boot's PID 1 is BusyBox init (BUSYBOX): its rcS starts /etc/init.d/S??*, as
    # Buildroot's does. BusyBox's syslogd as Buildroot's S01syslogd starts it, and shrinkd's
    # init script as Buildroot and Yocto install it.
    cat > /etc/init.d/S01syslogd <<'SYSLOGD'
#!/bin/sh
case "$1" in
    start) printf 'Starting syslogd: '
           start-stop-daemon -S -q -b -m -p /var/run/syslogd.pid -x "$(command -v syslogd)" -- -n && echo OK ;;
    stop) printf 'Stopping syslogd: '; start-stop-daemon -K -q -p /var/run/syslogd.pid && echo OK ;;
esac
SYSLOGD
    chmod 0755 /etc/init.d/S01syslogd
    install -m 0755 packaging/init.d/shrinkd /etc/init.d/S02shrinkd
    mark checks-end
    exit 0
fi
modprobe shrinkmem; echo $? > "$OUT/lc-modprobe.rc"
systemctl start shrinkd; state > "$OUT/lc-active-start.txt"
# autopkgtest with this board as the testbed (the null virt server: a whole machine, its kernel,
# systemd as PID 1): the tests of debian/tests/control, from the source package, on shrinkd as
# built (autopkgtest reinstalls it from the .deb). Not shrinkmem-dkms: no test needs it, and its
# reinstall would have DKMS remove and build the module again (minutes under emulation).
mark autopkgtest-start
autopkgtest --no-built-binaries --output-dir "$OUT/autopkgtest" "$OUT"/debs/shrinkd_*.deb "$OUT"/src/*.dsc -- null \
    > "$OUT/autopkgtest.log" 2>&1
echo $? > "$OUT/autopkgtest.rc"
mark autopkgtest-end
# a reload with a broken drop-in keeps the running configuration
C=$(cursor)
pid=$(systemctl show -p MainPID --value shrinkd)
printf 'rules:\n  - name: broken\n    orders: [nonsense]\n' > /etc/shrinkd/conf.d/99-broken.yaml
systemctl reload shrinkd; echo $? > "$OUT/lc-reload.rc"
event reload_failed 60 "$C" > "$OUT/lc-reload-failed.json"; echo $? > "$OUT/lc-reload-failed.rc"
sleep 2
show > "$OUT/lc-after-bad-reload.txt"; echo "PID_BEFORE=$pid" >> "$OUT/lc-after-bad-reload.txt"
rm /etc/shrinkd/conf.d/99-broken.yaml
C=$(cursor)
systemctl reload shrinkd
event reloaded 60 "$C" > "$OUT/lc-reloaded.json"; echo $? > "$OUT/lc-reloaded.rc"
mark reload-end
# SIGSTOP: no more watchdog pings, systemd kills and restarts it. The unit's own
# WatchdogSec (minutes) is shortened by a drop-in for this step, so the wait is short.
mkdir -p /etc/systemd/system/shrinkd.service.d
printf '[Service]\nWatchdogSec=20s\n' > /etc/systemd/system/shrinkd.service.d/50-board-test.conf
systemctl daemon-reload; systemctl restart shrinkd
show > "$OUT/lc-before-stop.txt"
pid=$(systemctl show -p MainPID --value shrinkd)
kill -STOP "$pid"
stopped_at=$(cut -d' ' -f1 /proc/uptime)
for _ in $(seq 180); do
    now=$(systemctl show -p MainPID --value shrinkd)
    [ "$now" != "$pid" ] && [ "$now" != 0 ] && [ "$(systemctl is-active shrinkd)" = active ] && break
    sleep 1
done
echo "$stopped_at $(cut -d' ' -f1 /proc/uptime)" > "$OUT/lc-watchdog-times.txt"
show > "$OUT/lc-after-stop.txt"; echo "PID_BEFORE=$pid" >> "$OUT/lc-after-stop.txt"
journalctl -u shrinkd -o cat --no-pager -n 30 > "$OUT/lc-watchdog-journal.txt"
rm -r /etc/systemd/system/shrinkd.service.d; systemctl daemon-reload; systemctl restart shrinkd
mark watchdog-end
# remove, then install again
cd "$OUT/debs"
apt-get remove -y shrinkd < /dev/null > "$OUT/lc-remove.log" 2>&1; echo $? > "$OUT/lc-remove.rc"
state > "$OUT/lc-active-after-remove.txt"
apt-get install -y ./shrinkd_*.deb < /dev/null > "$OUT/lc-reinstall.log" 2>&1; echo $? > "$OUT/lc-reinstall.rc"
sleep 2
state > "$OUT/lc-active-after-reinstall.txt"
systemctl is-enabled shrinkd > "$OUT/lc-enabled-after-reinstall.txt" 2>&1
if [ "$(state)" != active ]; then
    # so that the later steps are judged on their own
    systemctl unmask shrinkd; systemctl enable --now shrinkd; echo applied > "$OUT/lc-reinstall-workaround.txt"
fi
mark reinstall-end
# upgrade with an edited configuration
echo "# edited on this board" >> /etc/shrinkd/shrinkd.yaml
sha256sum /etc/shrinkd/shrinkd.yaml > "$OUT/lc-conf-edited.sha"
grep -c '^# edited on this board$' /etc/shrinkd/shrinkd.yaml > "$OUT/lc-conf-edit-applied.txt"
dpkg-query -W shrinkd > "$OUT/lc-version-before-upgrade.txt"
if [ -d "$OUT/debs-new" ]; then
    cd "$OUT/debs-new"
    apt-get install -y ./shrinkd_*.deb < /dev/null > "$OUT/lc-upgrade.log" 2>&1; echo $? > "$OUT/lc-upgrade.rc"
    cd "$OUT/debs"
fi
dpkg-query -W shrinkd > "$OUT/lc-version-after-upgrade.txt"
sha256sum /etc/shrinkd/shrinkd.yaml > "$OUT/lc-conf-after-upgrade.sha"
ls -a /etc/shrinkd > "$OUT/lc-etc-after-upgrade.txt"
sleep 2
state > "$OUT/lc-active-after-upgrade.txt"
mark upgrade-end
# purge: nothing of either package may stay
rm -f /etc/shrinkd/conf.d/50-board-test.yaml
apt-get purge -y shrinkd shrinkmem-dkms < /dev/null > "$OUT/lc-purge.log" 2>&1; echo $? > "$OUT/lc-purge.rc"
cd "$REPO"
$PY tests/board_guest.py fs-list > "$OUT/fs-after.txt"
dkms status > "$OUT/lc-dkms-after-purge.txt" 2> "$OUT/lc-dkms-after-purge.err"
systemctl is-enabled shrinkd > "$OUT/lc-enabled-after-purge.txt" 2>&1
mark purge-end
journalctl -b -o short-monotonic --no-pager > "$OUT/journal-all.txt"
dmesg > "$OUT/dmesg-end.txt"
mark checks-end
"""


# The third boot of the targets outside LIFECYCLE (whose packages stay installed): PID 1 is
# BusyBox init (tests/rootfs.py BUSYBOX_INITTAB), no systemd, no journald. shrinkd was started
# at boot by its init script; a workload brings an event, which must reach syslog (BusyBox's
# syslogd, /var/log/messages) with its fields; `shrinkd status` must find the daemon; the
# init script's status and stop must work.
BUSYBOX_INIT = "init=/usr/local/lib/shrinkd-vmtest/init"
BUSYBOX = r"""
set -u
exec 2>&1
mark() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >> "$OUT/marks.txt"; }
mark busybox-start
{ tr '\0' ' ' < /proc/1/cmdline; echo; readlink /proc/1/exe; } > "$OUT/bb-pid1.txt"
cp /run/rcS.log "$OUT/bb-rcS.log"
/etc/init.d/S02shrinkd status > "$OUT/bb-status-at-boot.txt"; echo "rc=$?" >> "$OUT/bb-status-at-boot.txt"
for _ in $(seq 120); do [ -e /run/shrinkd/status.json ] && break; sleep 1; done
cat /var/run/shrinkd.pid > "$OUT/bb-pidfile.txt"
shrinkd status --json > "$OUT/bb-status.json" 2> "$OUT/bb-status.err"
mark busybox-ready
avail=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
mb=$((avail * __WORKLOAD_PCT__ / 100 / 1024))
rm -f /tmp/frag-ready
$PY -c 'import sys; from pathlib import Path; from tests.capture import fragment; fragment(int(sys.argv[1]), Path(sys.argv[2]))' \
    "$mb" /tmp/frag-ready &
FRAG=$!
for _ in $(seq 600); do [ -e /tmp/frag-ready ] && break; sleep 1; done
found=1
for _ in $(seq 300); do
    grep -q 'SHRINKD_EVENT="compacted"' /var/log/messages 2>/dev/null && { found=0; break; }
    sleep 1
done
echo "$found" > "$OUT/bb-event.rc"
mark busybox-event
kill $FRAG; wait $FRAG 2>/dev/null
/etc/init.d/S02shrinkd stop > "$OUT/bb-stop.txt" 2>&1; echo "rc=$?" >> "$OUT/bb-stop.txt"
/etc/init.d/S02shrinkd status > "$OUT/bb-status-after-stop.txt"; echo "rc=$?" >> "$OUT/bb-status-after-stop.txt"
sleep 1
cp /var/log/messages "$OUT/bb-messages.txt"
mark busybox-end
"""


@dataclass
class Session:
    """What one target's guest session left in its run folder."""

    name: str
    out: Path
    seconds: float
    image_seconds: float
    error: Optional[str]
    cpu_seconds: float = 0.0

    @property
    def target(self) -> vm.Target:
        return vm.TARGETS[self.name]

    def has(self, name: str) -> bool:
        return (self.out / name).exists()

    def text(self, name: str) -> str:
        path = self.out / name
        if not path.exists():
            raise AssertionError(f"{self.name}: the guest left no {name}{self.context()}")
        return path.read_text(errors="replace")

    def json(self, name: str) -> Any:
        return json.loads(self.text(name))

    def journal(self, name: str) -> List[Dict[str, Any]]:
        self.text(name)  # says which session left no such file
        return vm.journal_entries(self.out / name)

    def context(self) -> str:
        if self.error:
            return f"\n(session error: {self.error[-3000:]})"
        log = self.out / "boots" / "2.log"
        return f"\n(boot 2 log: {log.read_text()[-2000:]})" if log.exists() else ""

    def marks(self) -> Dict[str, float]:
        found: Dict[str, float] = {}
        if self.has("marks.txt"):
            for line in self.text("marks.txt").splitlines():
                name, value = line.split()
                found[name] = float(value)
        return found


_lock = threading.Lock()
_futures: Dict[str, concurrent.futures.Future[Session]] = {}
_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None


def session(name: str) -> Session:
    """The session of target `name`: on the first call every selected target's session starts, BOARD_JOBS at a time."""
    global _pool
    with _lock:
        if not _futures:
            debs = packages()
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs(), thread_name_prefix="board")
            for target in targets():
                _futures[target] = _pool.submit(run_session, target, debs)
        if name not in _futures:
            assert _pool is not None
            _futures[name] = _pool.submit(run_session, name, packages())
    return _futures[name].result()


@functools.cache
def packages() -> Dict[str, Dict[str, Path]]:
    """The packages of this tree (`current`), a newer version (`newer`) and the source package (`source`: the
    .dsc and its tarball, for autopkgtest)."""
    out = BOARDS_DIR / "debs"
    if out.exists():
        shutil.rmtree(out)
    version = re.search(r'^__version__ = "(.+)"$', (REPO / "shrinkd" / "__init__.py").read_text(), re.M)
    assert version, "shrinkd/__init__.py: no __version__"
    return {
        "current": build_debs(out / "current"),
        "newer": build_debs(out / "newer", version=f"{version.group(1)}+upgrade1"),
        "source": source_package(out / "source"),
    }


def source_package(out: Path) -> Dict[str, Path]:
    out.mkdir(parents=True)
    build_source(out)
    return {path.name: path for path in out.iterdir() if path.is_file()}


def data_disk(run: Path) -> Path:
    from tests.test_kmod_vm import make_data_disk

    return make_data_disk(run, cache_mb=CACHE_MB)


def run_session(name: str, debs: Dict[str, Dict[str, Path]]) -> Session:
    target = vm.TARGETS[name]
    out = BOARDS_DIR / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.monotonic()
    error = None
    image_seconds = 0.0
    cpu_seconds = 0.0
    try:
        board = vm.Board(target, out)
        image_seconds = time.monotonic() - started
        files: Dict[str, str | bytes | Path] = {}
        for kind, folder in (("current", "debs"), ("newer", "debs-new"), ("source", "src")):
            for path in debs.get(kind, {}).values():
                files[f"{folder}/{path.name}"] = path
        data = data_disk(out)
        lifecycle = "1" if name in LIFECYCLE else "0"
        checks = (
            CHECKS.replace("__WORKLOAD_PCT__", str(WORKLOAD_PCT))
            .replace("__HOG_MB__", str(HOG_MB))
            .replace("__KILL_MB__", str(KILL_MB))
            .replace("__FUZZ_CALLS__", str(FUZZ_CALLS))
            .replace("__PLAN__", capture_plan(name))
            .replace("__LIFECYCLE__", lifecycle)
        )
        install = (
            INSTALL.replace("__TRIGGER__", str(TRIGGER)).replace("__CLEAR__", str(CLEAR)).replace("__LIFECYCLE__", lifecycle)
        )
        scripts = [install, checks]
        if name not in LIFECYCLE:
            scripts.append(BUSYBOX.replace("__WORKLOAD_PCT__", str(WORKLOAD_PCT)))
        result = board.run(scripts, files=files, disks=[data], timeout=3600,
                           boot_with={2: vm.BootWith(append=(BUSYBOX_INIT,))})
        cpu_seconds = result.cpu_seconds
        for boot in result.boots:
            if boot.status != "0":
                error = f"boot {boot.index}: status {boot.status}\n{boot.log[-3000:]}\n{result.console[-2000:]}"
        data.unlink()
        out.joinpath("root.qcow2").unlink()
    except Exception as problem:  # reported by every test of this target
        error = f"{type(problem).__name__}: {problem}"
    seconds = time.monotonic() - started
    found = Session(name, out, seconds, image_seconds, error, cpu_seconds)
    (out / "session.json").write_text(json.dumps({"seconds": round(seconds, 1), "image_seconds": round(image_seconds, 1),
                                                  "cpu_seconds": round(cpu_seconds, 1), "error": error}, indent=1))
    return found


def load(name: str) -> Session:
    """A finished session from its run folder (the last run of this target)."""
    out = BOARDS_DIR / name
    meta = json.loads((out / "session.json").read_text())
    return Session(name, out, meta["seconds"], meta["image_seconds"], meta["error"], meta.get("cpu_seconds", 0.0))


def figures(found: Session) -> Dict[str, Any]:
    """What the docs table shows for one target, from what its session measured."""
    from tests.kernel_oracle import mismatches, parse_debugfs_index

    fig: Dict[str, Any] = {"target": found.name, "session_s": round(found.seconds), "session_cpu_s": round(found.cpu_seconds),
                           "error": found.error}
    page = int(found.text("pagesize.txt")) if found.has("pagesize.txt") else 0
    fig["release"] = found.text("uname.txt").strip() if found.has("uname.txt") else "?"
    fig["page_kb"] = page // 1024
    marks = found.marks()
    image = vm.image_for(found.target)
    fig["image_build_s"] = image.manifest.get("build_seconds")
    fig["image_build_cpu_s"] = image.manifest.get("cpu_seconds")
    if "installed" in marks and "fs-listed" in marks:
        fig["apt_dkms_s"] = round(marks["installed"] - marks["fs-listed"])
    if found.has("show-at-boot.txt"):
        shown = dict(line.split("=", 1) for line in found.text("show-at-boot.txt").splitlines() if "=" in line)
        fig["boot_to_ready_s"] = round(int(shown.get("ActiveEnterTimestampMonotonic", "0")) / 1e6, 1)
    if found.has("kmod/results.json"):
        results = json.loads(found.text("kmod/results.json"))
        load = results.get("load", {})
        fig["method"] = load.get("info", {}).get("method")
        cache = results.get("cache", {})
        if "text_summary" in cache and page:
            fig["echo_100_reclaimed_mb"] = round(int(cache["text_summary"]["last_pages_reclaimed"]) * page / 2**20, 1)
            fig["echo_100_cache_drop_mb"] = round(
                (cache["text_before"]["Cached_kB"] - cache["text_after"]["Cached_kB"]) / 1024, 1
            )
        fig["kmod_checks_s"] = round(results.get("uptime_at_end", 0) - results.get("uptime_at_start", 0))
    states = sorted(p for p in (found.out / "capture").glob("*") if (p / "meta.txt").exists()) \
        if (found.out / "capture").is_dir() else []
    if states:
        compared = 0
        zones: List[str] = []
        for state in states:
            for name in ("unusable_index", "extfrag_index"):
                rows = parse_debugfs_index((state / "debugfs" / "extfrag" / name).read_text())
                compared += sum(len(row) for row in rows.values())
                zones = sorted({zone for _, zone in rows} | set(zones))
        fig["metrics"] = {"states": [s.name.rsplit("-", 1)[1] for s in states], "zones": zones,
                          "values": compared, "mismatches": sum(len(mismatches(s)) for s in states)}
    if found.has("journal-event.json"):
        entries = [e for e in found.journal("journal-event.json") if e.get("SHRINKD_RULE") == "board-huge"]
        steps = []
        for entry in entries:
            kind = entry["SHRINKD_EVENT"]
            if kind in ("triggered", "cleared"):
                steps.append(f"{kind} {entry.get('SHRINKD_VALUE')}")
            elif kind in ("compacted", "reclaimed"):
                steps.append(f"{kind} via {entry.get('SHRINKD_BACKEND')} {entry.get('SHRINKD_BEFORE')}"
                             f"->{entry.get('SHRINKD_AFTER')}")
        if entries:
            first = entries[0]
            fig["event"] = {"zone": first.get("SHRINKD_ZONE"), "order": first.get("SHRINKD_ORDER"), "steps": steps}
    return fig


def table(names: List[str]) -> str:
    rows = [
        "| target | kernel | page | module call | `echo 100` reclaimed | metrics: shrinkd = kernel | boot to READY "
        "| event (rule at the huge-page order) | image build (cold) | session |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        fig = figures(load(name))
        metrics = fig.get("metrics")
        metric_text = (
            f"{metrics['values'] - metrics['mismatches']}/{metrics['values']} values equal "
            f"({', '.join(metrics['states'])}; zones {', '.join(metrics['zones'])})"
            if metrics else "not captured"
        )
        event = fig.get("event")
        event_text = f"{event['zone']} order {event['order']}: " + "; ".join(event["steps"]) if event else "none"
        rows.append(
            f"| {name} | {fig['release']} | {fig['page_kb']} KiB | {fig.get('method', '?')} "
            f"| {fig.get('echo_100_reclaimed_mb', '?')} MB (page cache -{fig.get('echo_100_cache_drop_mb', '?')} MB) "
            f"| {metric_text} | {fig.get('boot_to_ready_s', '?')} s | {event_text} "
            f"| {fig.get('image_build_s', '?')} s | {fig['session_s']} s |"
        )
    return "\n".join(rows) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["run"]:
        for name in args[1:] or targets():
            found = session(name)
            print(f"{name}: {found.seconds:.0f} s, error: {found.error}")
        return 0
    if args[:1] == ["table"]:
        sys.stdout.write(table(args[1:] or [n for n in ORDER if (BOARDS_DIR / n / "session.json").exists()]))
        return 0
    if args[:1] == ["figures"]:
        for name in args[1:] or [n for n in ORDER if (BOARDS_DIR / n / "session.json").exists()]:
            print(json.dumps(figures(load(name)), indent=1))
        return 0
    print("usage: python -m tests.boards run [TARGET...] | table [TARGET...] | figures [TARGET...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
