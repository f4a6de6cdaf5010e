"""shrinkd.service in a booted Debian kernel, managed by systemd, with its whole sandbox.

How the guest gets a systemd: virtme-ng's own init is PID 1 of the guest. A
`vng --systemd` boot (systemd as the kernel's init) was tried with
`systemd.unit=kernel-command-line.target systemd.run=...`: systemd detects "docker"
virtualization (this machine's /.dockerenv is in the guest's root), so, as in a
container, it ignores systemd.* options on the kernel command line and boots
graphical.target with every unit of this machine (postgresql, earlyoom, nohang, gettys,
logind failing in a loop); after 420 s it sat at a login prompt with nothing to power
it off. So the test starts Debian's systemd 252 as PID 1 of a new PID and
mount namespace (unshare --pid --mount --root), on an overlay of the guest's root
whose upper layer is a tmpfs, with `--unit=` a small target: systemd boots
sysinit.target (journald, udevd, tmpfiles, sysctl...; a few units that only cost time
here are masked, see MASKED), then shrinkd.service. The unit
is the installed one: the shrinkd .deb is installed in the overlay with dpkg -i and
runs with Debian's python3 and its python3-* packages. Only test drop-ins are added:
an ExecStartPre= probe (it runs under exactly the service's sandbox) and a shorter
WatchdogSec= so that missing pings would show within the test.

Checked, in Debian's 6.1 kernel:
- the package installs (maintainer scripts included) and `shrinkd status` runs;
- under the sandbox, shrinkd can write compact_memory, node0/compact, memory.reclaim
  and drop_caches, set a PSI trigger with a 500 ms window (CAP_SYS_RESOURCE), open a
  netlink socket; it cannot write other tunables, /etc, open an inet socket, or open
  a device outside the allow list; its capabilities are exactly CAP_SYS_ADMIN and
  CAP_SYS_RESOURCE, with no_new_privs and seccomp;
- `shrinkd run` starts (READY=1), logs its events to journald with their MESSAGE_IDs
  and compacts memory when a rule's threshold is crossed;
- the shrinkmem module loaded after shrinkd started: the udev rule re-allows
  /dev/shrinkmem (a process in shrinkd's cgroup and mount namespace can open it) and
  reloads shrinkd, which reports the new backend;
  after a restart with the module loaded, the probe runs an ioctl reclaim;
- `systemctl reload` (SIGHUP) reloads, the watchdog is fed, stop ends cleanly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

from shrinkd.journal import MESSAGE_IDS
from tests import vm
from tests.debs import build_debs

pytestmark = pytest.mark.vm

KERNEL = "6.1"
CAP_SYS_ADMIN = 21
CAP_SYS_RESOURCE = 24
CAP_SYSLOG = 34

# sysinit.target units that take time under emulation and that nothing here needs
# (journald and udevd stay: events go to the journal, the udev rule is tested).
MASKED = (
    "systemd-udev-trigger.service",
    "systemd-journal-flush.service",
    "systemd-update-utmp.service",
    "systemd-random-seed.service",
    "systemd-sysusers.service",
    "systemd-remount-fs.service",
    "systemd-binfmt.service",
    "apparmor.service",
    "e2scrub_reap.service",
    "kmod-static-nodes.service",
    "modprobe@.service",
)

# Runs as ExecStartPre= of shrinkd.service: same user, capabilities, namespaces,
# seccomp filter and device policy as the daemon. Prints one JSON line to the journal.
PROBE = r"""
import errno, json, os, socket, sys

def attempt(action):
    try:
        action()
        return "ok"
    except OSError as error:
        return errno.errorcode.get(error.errno, str(error.errno))

def write(path, data):
    def action():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return attempt(action)

def psi(window_us):
    def action():
        fd = os.open("/proc/pressure/memory", os.O_RDWR | os.O_NONBLOCK)
        try:
            os.write(fd, b"some 150000 %d\0" % window_us)
        finally:
            os.close(fd)
    return attempt(action)

def sock(family, kind, proto=0):
    return attempt(lambda: socket.socket(family, kind, proto).close())

report = {
    "writes": {path: write(path, data) for path, data in (
        ("/proc/sys/vm/compact_memory", b"1"),
        ("/sys/devices/system/node/node0/compact", b"1"),
        ("/sys/fs/cgroup/memory.reclaim", b"1M"),
        ("/proc/sys/vm/drop_caches", b"1"),
        ("/proc/sys/vm/compaction_proactiveness", b"20"),
        ("/proc/sys/vm/swappiness", b"60"),
        ("/sys/kernel/mm/transparent_hugepage/enabled", b"madvise"),
        ("/sys/fs/cgroup/system.slice/memory.reclaim", b"1M"),
        ("/etc/shrinkd/probe", b"x"),
        ("/var/tmp/probe", b"x"),
        ("/dev/probe", b"x"),
    )},
    "psi_500ms": psi(500000),
    "psi_2s": psi(2000000),
    "netlink": sock(socket.AF_NETLINK, socket.SOCK_RAW, 15),
    "unix": sock(socket.AF_UNIX, socket.SOCK_DGRAM),
    "inet": sock(socket.AF_INET, socket.SOCK_STREAM),
    "kmsg": attempt(lambda: os.close(os.open("/dev/kmsg", os.O_RDONLY))),
    "status": {line.split(":")[0]: line.split(":", 1)[1].strip() for line in open("/proc/self/status")
               if line.startswith(("Cap", "NoNewPrivs", "Seccomp", "Uid"))},
    "shrinkmem_exists": os.path.exists("/dev/shrinkmem"),
}
if report["shrinkmem_exists"]:
    try:
        from shrinkd.shrinkmem import ShrinkMem
        with ShrinkMem() as device:
            result = device.reclaim(256)
        report["shrinkmem_reclaim"] = {"ok": True, "pages": result.pages_reclaimed}
    except Exception as error:
        report["shrinkmem_reclaim"] = {"ok": False, "error": str(error)}
for path in ("/etc/shrinkd/probe", "/var/tmp/probe", "/dev/probe"):
    if report["writes"][path] == "ok":
        os.unlink(path)
print("SHRINKD-VM-PROBE " + json.dumps(report), flush=True)
"""

# Opens a path read-write from inside shrinkd's cgroup (device policy) and mount
# namespace (its /dev); prints ok or the errno name.
INSIDE = r"""
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_RDWR))
    print("ok")
except OSError as error:
    print(errno.errorcode.get(error.errno, str(error.errno)))
"""

# A rule every zone of 1 GB guest crosses at once: some free memory is always in
# blocks smaller than the largest order, so the unusable index there is above 0.
CONFIG = """\
rules:
  - name: vmtest
    zones: ["*"]
    orders: [10]
    min_zone_size: 1M
    unusable_index:
      trigger: 0.001
      clear: 0.0
    sustain: 1
    reclaim: false
guards:
  cooldown: 30
"""

GUEST = r"""
set -u
exec 2>&1
T0=$(cut -d' ' -f1 /proc/uptime)
stamp() { echo "T $1 $(cut -d' ' -f1 /proc/uptime)" >> "$OUT/timings.txt"; }
stamp guest-start
mkdir -p /tmp/vmroot && mount -t tmpfs -o size=256M tmpfs /tmp/vmroot || exit 10
mkdir /tmp/vmroot/upper /tmp/vmroot/work /tmp/vmroot/root
R=/tmp/vmroot/root
mount -t overlay overlay -o lowerdir=/,upperdir=/tmp/vmroot/upper,workdir=/tmp/vmroot/work $R || exit 11
mount --bind "$OUT" "$R$OUT" || exit 12
# man-db's trigger (the package has a manual page) would index all of this machine's
# /usr/share/man through the overlay: minutes under emulation, and nothing here reads it
rm -f $R/var/lib/man-db/auto-update
stamp dpkg-start
chroot $R dpkg -i "$OUT/debs/$SHRINKD_DEB" > "$OUT/dpkg.log" 2>&1
echo "dpkg exit $?" >> "$OUT/dpkg.log"
chroot $R shrinkd status > "$OUT/status.txt" 2>&1
echo "status exit $?" >> "$OUT/status.txt"
stamp installed
# a clean /tmp and /var/tmp as on a booted system (else systemd-tmpfiles empties this
# machine's /tmp through the overlay, which takes minutes under emulation)
mount -t tmpfs tmpfs $R/tmp && mount -t tmpfs tmpfs $R/var/tmp || exit 13
# a checkout under /tmp (or /var/tmp) would now be hidden: bind its run folder again
case "$OUT" in
    /tmp/*|/var/tmp/*) mkdir -p "$R$OUT" && mount --bind "$OUT" "$R$OUT" || exit 14 ;;
esac
# the probe runs as the service's ExecStartPre, where /tmp is private: keep it out of /tmp
T=/usr/local/lib/shrinkd-vmtest
mkdir -p $R$T && cp "$OUT/probe.py" $R$T/ || exit 15
mkdir -p $R/etc/systemd/system/shrinkd.service.d
cat > $R/etc/systemd/system/shrinkd.service.d/50-vmtest.conf <<EOF
[Service]
ExecStartPre=/usr/bin/python3 $T/probe.py
WatchdogSec=15s
EOF
cp "$OUT/vmtest.yaml" $R/etc/shrinkd/conf.d/50-vmtest.yaml
for unit in $MASKED; do ln -sf /dev/null "$R/etc/systemd/system/$unit"; done
cat > $R/etc/systemd/system/vmcheck.service <<EOF
[Unit]
After=shrinkd.service
[Service]
Type=oneshot
Environment=OUT=$OUT
ExecStart=/bin/bash $OUT/check.sh
EOF
cat > $R/etc/systemd/system/vmtest.target <<EOF
[Unit]
Wants=systemd-journald.socket systemd-udevd.service shrinkd.service vmcheck.service
EOF
stamp systemd-start
timeout 420 unshare --pid --fork --mount --propagation private --root=$R --mount-proc=/proc \
    /lib/systemd/systemd --unit=vmtest.target --log-target=journal-or-kmsg --show-status=no > "$OUT/systemd.log" 2>&1
echo "systemd exit $?" >> "$OUT/systemd.log"
stamp systemd-exit
test -e "$OUT/check.done"
"""

CHECK = r"""
exec > "$OUT/check.log" 2>&1
set -x
stamp() { echo "T $1 $(cut -d' ' -f1 /proc/uptime)" >> "$OUT/timings.txt"; }
stamp shrinkd-ready
wait_for() {  # SECONDS COMMAND...: retry once a second
    local left=$1; shift
    until "$@"; do
        left=$((left - 1)); [ "$left" -gt 0 ] || return 1
        sleep 1
    done
}
event() { journalctl -u shrinkd MESSAGE_ID="$1" -o cat --no-pager | grep -q .; }
inside() {  # run python INSIDE PATH in shrinkd's cgroup and mount namespace
    local pid; pid=$(systemctl show -p MainPID --value shrinkd)
    sh -c 'echo $$ > /sys/fs/cgroup/system.slice/shrinkd.service/cgroup.procs && exec nsenter --mount=/proc/'"$pid"'/ns/mnt /usr/bin/python3 "$@"' sh "$OUT/inside.py" "$1"
}
systemctl is-active shrinkd > "$OUT/active.txt"
systemctl show shrinkd -p StatusText --value > "$OUT/status-text.txt"
wait_for 120 event "$COMPACTED"; echo "compacted $?" >> "$OUT/results.txt"
# a device opened in a way the policy does not allow (the kernel log's 1:11 under another
# name, opened for writing: the unit allows it read-only); the probing process has every capability
mknod /dev/vmtest-kmsg c 1 11
echo "inside-other-device $(inside /dev/vmtest-kmsg)" >> "$OUT/results.txt"
echo "inside-shrinkmem-before $(inside /dev/shrinkmem)" >> "$OUT/results.txt"
stamp insmod
insmod "$OUT/shrinkmem.ko"; echo "insmod $?" >> "$OUT/results.txt"
udevadm settle --timeout=30
# the udev rule's `systemctl set-property --runtime` leaves this drop-in
wait_for 30 test -e /run/systemd/system.control/shrinkd.service.d/50-DeviceAllow.conf
echo "udev-rule $?" >> "$OUT/results.txt"
echo "inside-shrinkmem-after $(inside /dev/shrinkmem)" >> "$OUT/results.txt"
wait_for 30 event "$BACKENDS"; echo "backends-changed $?" >> "$OUT/results.txt"
reloads() { journalctl -u shrinkd MESSAGE_ID="$RELOADED" -o cat --no-pager | wc -l; }
before=$(reloads)
systemctl reload shrinkd; echo "reload $?" >> "$OUT/results.txt"
wait_for 30 sh -c "[ \$(journalctl -u shrinkd MESSAGE_ID=$RELOADED -o cat --no-pager | wc -l) -gt $before ]"
echo "reloaded $?" >> "$OUT/results.txt"
sleep 17  # longer than WatchdogSec: a missing ping would have killed it
systemctl show shrinkd -p NRestarts -p ActiveState -p SubState -p Result > "$OUT/show-before-restart.txt"
stamp restart
systemctl restart shrinkd; echo "restart $?" >> "$OUT/results.txt"
systemctl show shrinkd -p ActiveState --value > "$OUT/active-after-restart.txt"
stamp stop
systemctl stop shrinkd
systemctl show shrinkd -p Result -p ExecMainStatus -p ExecMainCode > "$OUT/show-after-stop.txt"
journalctl -o short-monotonic --no-pager > "$OUT/boot.txt" 2>&1
journalctl -u shrinkd -o json --no-pager > "$OUT/journal.json"
journalctl -u shrinkd -o short-monotonic --no-pager > "$OUT/journal.txt"
touch "$OUT/check.done"
systemctl --no-block exit 0
"""


def build_module(out: Path) -> Path:
    source = out / "kmod"
    shutil.copytree(vm.REPO / "kmod", source, ignore=shutil.ignore_patterns("*.ko", "*.o", ".*.cmd", "*.mod*"))
    built = subprocess.run(
        ["make", "-C", str(vm.headers_dir(KERNEL)), f"M={source}", "modules"],
        capture_output=True, text=True, check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return source / "shrinkmem.ko"


def journal_entries(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def probes(entries: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    found = []
    for entry in entries:
        message = entry.get("MESSAGE")
        if isinstance(message, str) and message.startswith("SHRINKD-VM-PROBE "):
            found.append(json.loads(message[len("SHRINKD-VM-PROBE ") :]))
    return found


def results(out: Path) -> Dict[str, str]:
    pairs = [line.split(" ", 1) for line in (out / "results.txt").read_text().splitlines()]
    return {key: value for key, value in pairs}


@pytest.fixture(scope="module")
def guest() -> Path:
    reason = vm.available()
    if reason is not None:
        pytest.skip(reason)
    out = vm.new_run_dir("unit-")
    deb = build_debs(out / "debs")["shrinkd"]
    shutil.copy(build_module(out), out / "shrinkmem.ko")
    (out / "probe.py").write_text(PROBE)
    (out / "inside.py").write_text(INSIDE)
    (out / "vmtest.yaml").write_text(CONFIG)
    (out / "check.sh").write_text(
        f"COMPACTED={MESSAGE_IDS['compacted']}\nBACKENDS={MESSAGE_IDS['backends_changed']}\n"
        f"RELOADED={MESSAGE_IDS['reloaded']}\n" + CHECK
    )
    script = f"SHRINKD_DEB={deb.name}\nMASKED='{' '.join(MASKED)}'\n" + GUEST
    result = vm.run_in_vm(script, kernel=KERNEL, memory="1G", out_dir=out, timeout=900)
    logs = "".join(
        f"\n--- {name}\n{(out / name).read_text()[-3000:]}"
        for name in ("timings.txt", "dpkg.log", "check.log", "results.txt", "journal.txt", "systemd.log")
        if (out / name).exists()
    )
    if result.returncode != 0:
        raise vm.VMError(f"guest failed ({result.returncode}):{logs}\n{result.output[-3000:]}")
    return out


def test_package_installs_and_runs(guest: Path) -> None:
    dpkg = (guest / "dpkg.log").read_text()
    assert "Setting up shrinkd" in dpkg and "dpkg exit 0" in dpkg, dpkg
    status = (guest / "status.txt").read_text()
    assert "status exit 0" in status and "Node 0, zone" in status, status


def test_sandbox_allows_exactly_what_shrinkd_writes(guest: Path) -> None:
    first = probes(journal_entries(guest / "journal.json"))[0]
    writes = first["writes"]
    for path in (
        "/proc/sys/vm/compact_memory",
        "/sys/devices/system/node/node0/compact",
        "/sys/fs/cgroup/memory.reclaim",
        "/proc/sys/vm/drop_caches",
    ):
        assert writes[path] == "ok", (path, writes)
    for path in (
        "/proc/sys/vm/compaction_proactiveness",
        "/proc/sys/vm/swappiness",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/fs/cgroup/system.slice/memory.reclaim",
        "/etc/shrinkd/probe",
        "/dev/probe",
    ):
        assert writes[path] == "EROFS", (path, writes)
    assert writes["/var/tmp/probe"] == "ok"  # PrivateTmp: its own /var/tmp
    assert first["psi_500ms"] == "ok" and first["psi_2s"] == "ok"
    assert first["netlink"] == "ok" and first["unix"] == "ok"
    assert first["inet"] == "EAFNOSUPPORT"
    # The kernel's log is read for allocation failures: DeviceAllow=/dev/kmsg r, CAP_SYSLOG,
    # no ProtectKernelLogs= (docs/security.md).
    assert first["kmsg"] == "ok"
    status = first["status"]
    assert int(status["CapEff"], 16) == (1 << CAP_SYS_ADMIN) | (1 << CAP_SYS_RESOURCE) | (1 << CAP_SYSLOG)
    assert int(status["CapBnd"], 16) == int(status["CapEff"], 16)
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
    assert status["Uid"].split()[0] == "0"
    assert first["shrinkmem_exists"] is False


def test_daemon_runs_under_the_unit_and_logs_events(guest: Path) -> None:
    assert (guest / "active.txt").read_text().strip() == "active"
    assert (guest / "status-text.txt").read_text().strip(), "no STATUS= from sd_notify"
    entries = journal_entries(guest / "journal.json")
    ids = [entry.get("MESSAGE_ID") for entry in entries]
    assert MESSAGE_IDS["started"] in ids
    compacted = [entry for entry in entries if entry.get("MESSAGE_ID") == MESSAGE_IDS["compacted"]]
    assert compacted, (guest / "journal.txt").read_text()[-3000:]
    fields = compacted[0]
    assert fields.get("SHRINKD_EVENT") == "compacted"
    assert any(key.startswith("SHRINKD_") and key != "SHRINKD_EVENT" for key in fields)
    assert results(guest)["compacted"] == "0"


def story(guest: Path) -> str:
    """What systemd and shrinkd logged about the service, for a failure's message."""
    lines = [line for line in (guest / "boot.txt").read_text().splitlines() if "shrinkd" in line]
    return "\n".join(lines)[-4000:]


def test_module_loaded_later_is_usable_without_restart(guest: Path) -> None:
    found = results(guest)
    assert found["inside-other-device"] == "EPERM"  # the probe's method does see the device policy
    assert found["inside-shrinkmem-before"] == "ENOENT"
    assert found["insmod"] == "0"
    assert found["udev-rule"] == "0"
    assert found["inside-shrinkmem-after"] == "ok", story(guest)
    assert found["backends-changed"] == "0"


def test_restart_with_module_loaded_reclaims_through_it(guest: Path) -> None:
    after = probes(journal_entries(guest / "journal.json"))[-1]
    assert after["shrinkmem_exists"] is True
    assert after["shrinkmem_reclaim"]["ok"] is True, after["shrinkmem_reclaim"]
    assert after["shrinkmem_reclaim"]["pages"] >= 0
    assert (guest / "active-after-restart.txt").read_text().strip() == "active"


def test_reload_watchdog_and_stop(guest: Path) -> None:
    found = results(guest)
    assert found["reload"] == "0" and found["reloaded"] == "0"
    before = dict(line.split("=", 1) for line in (guest / "show-before-restart.txt").read_text().split())
    assert before["NRestarts"] == "0" and before["SubState"] == "running", (before, story(guest))
    stopped = dict(line.split("=", 1) for line in (guest / "show-after-stop.txt").read_text().split())
    assert stopped["Result"] == "success", stopped
    assert "Watchdog timeout" not in (guest / "journal.txt").read_text()
