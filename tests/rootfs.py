"""Debian root file systems for the board targets: built by the test suite itself, cached outside the repo.

One image per Debian architecture (amd64, arm64, armhf) holds the kernels of every
target of that architecture (tests/vm.py TARGETS), their headers (DKMS builds the
module in the guest), systemd as init, python3 with python3-yaml, a small unit that runs
the host's script at each boot, and on amd64 autopkgtest (ARCH_PACKAGES). It is built by
mmdebstrap from Debian's archive (bookworm, bookworm-updates, bookworm-security,
bookworm-backports); a foreign architecture's maintainer scripts run through
qemu-user-static and binfmt_misc (mounted here when it is not). The tree becomes an ext4 disk image (mkfs.ext4 -d), and the
kernels and their initramfs are copied beside it:

    $SHRINKD_TEST_CACHE/images/<arch>-<key>/root.img          (default /var/cache/shrinkd-tests)
                                            vmlinuz-<release>, initrd.img-<release>
                                            manifest.json       packages and versions, build seconds

<key> is a hash of everything that goes into the image (this recipe: packages,
suites, hooks, the runner), so a second run starts at once and a changed recipe
builds anew. Guests never write to root.img: each gets a qcow2 overlay
(tests/vm.py Board). `python -m tests.rootfs [ARCH...]` builds ahead of the tests.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

DEFAULT_CACHE = Path("/var/cache/shrinkd-tests")
MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
SOURCES = (
    f"deb {MIRROR} bookworm main\n"
    f"deb {MIRROR} bookworm-updates main\n"
    f"deb {SECURITY} bookworm-security main\n"
    f"deb {MIRROR} bookworm-backports main\n"
)
# What a board running shrinkd from its packages needs: systemd as init, the daemon's
# run-time dependencies (python3, python3-yaml), and what DKMS needs to build the module
# (dkms, gcc, make and each kernel's headers, added per architecture). Nothing else:
# every package costs build time under emulation.
BASE_PACKAGES = (
    "systemd-sysv", "udev", "kmod", "procps", "python3", "python3-yaml", "dkms", "gcc", "make", "tiny-initramfs",
    "busybox",  # PID 1 for the boots that ask for BusyBox init (BUSYBOX_INITTAB)
)
# Per architecture, beyond BASE_PACKAGES: the x86_64 boards (tests/boards.py LIFECYCLE) run the
# package's autopkgtest, the guest itself the testbed (autopkgtest's null virt server). No
# autodep8 (a Recommends, not installed): its DKMS test needs build-essential from the archive,
# and the guest has no network; the lifecycle's install has DKMS build the module already.
ARCH_PACKAGES = {"amd64": ("autopkgtest",)}
# binfmt_misc interpreters (qemu-user-static) per foreign architecture.
QEMU_USER = {"arm64": "qemu-aarch64", "armhf": "qemu-arm"}
# Bump when the image's layout changes in a way the recipe text does not show.
RECIPE_VERSION = 1

# Foreign maintainer scripts run under qemu-user, where depmod over a kernel's ~4000
# modules and an initramfs-tools run take minutes each. So the image uses Debian's
# tiny-initramfs (the smallest linux-initramfs-tool), and while the packages install,
# depmod and mktirfs are diverted to `true`; afterwards the host's own depmod indexes
# each kernel's modules (kmod reads any architecture's modules) and the host writes each
# initramfs as mktirfs would: tiny-initramfs' static init plus the modules that find the
# root disk (virtio PCI and block, ext4), listed in load order.
DIVERTED = ("/sbin/depmod", "/usr/sbin/mktirfs")
ESSENTIAL_HOOK = """\
set -e
for f in $DIVERTED; do
    chroot "$1" dpkg-divert --quiet --local --rename --divert "$f.shrinkd-tests" --add "$f"
    ln -sf /bin/true "$1$f"
done
"""
INITRD_MODULES = ("virtio_pci", "virtio_blk", "ext4")

# Runs at every boot after multi-user.target: mounts the host's 9p shares (out: the run
# folder, read-write; repo: this repository, read-only), runs the first boot script
# without a status, then reboots into the next one or powers off. (tests/vm.py's Board
# writes one script per power-on, so the guest powers off after each.)
RUNNER = """\
#!/bin/bash
# shrinkd tests (tests/vm.py): run this boot's script from the host, then reboot or power off.
set -u
B=/mnt/out/boots
next_or_off() { if [ -e "$B/$(($1 + 1)).sh" ]; then systemctl --no-block reboot; else systemctl --no-block poweroff; fi; }
modprobe -a 9pnet_virtio 9p
mkdir -p /mnt/out /mnt/repo
mountpoint -q /mnt/out || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /mnt/out \\
    || { echo "vmtest: cannot mount the host's run folder"; systemctl --no-block poweroff; exit 1; }
mountpoint -q /mnt/repo || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro repo /mnt/repo
n=1
while [ -e "$B/$n.status" ]; do n=$((n + 1)); done
if [ ! -e "$B/$n.sh" ]; then systemctl --no-block poweroff; exit 0; fi
if [ -e "$B/$n.started" ]; then
    echo crashed > "$B/$n.status"   # this boot's script began once already: the guest died under it
    systemctl --no-block poweroff; exit 0
fi
cut -d' ' -f1 /proc/uptime > "$B/$n.started"
cd /mnt/repo
OUT=/mnt/out REPO=/mnt/repo PY=/usr/bin/python3 BOOT=$n PYTHONDONTWRITEBYTECODE=1 bash "$B/$n.sh" > "$B/$n.log" 2>&1
echo $? > "$B/$n.status"
sync
next_or_off "$n"
"""

# BusyBox init, for a boot whose kernel command line says init=/usr/local/lib/shrinkd-vmtest/init
# (a link to busybox: the applet is the link's name): the boot of a Buildroot board. Its
# /etc/inittab (systemd ignores the file) runs rcS as Buildroot's does: the file systems
# systemd would mount, then each /etc/init.d/S??* with "start" in order; then the runner, the
# same as RUNNER without systemd. BusyBox's applets (start-stop-daemon, sh, sleep, kill, ...)
# come first in PATH, as on a Buildroot board, through links made at build time; modules are
# loaded with kmod's /sbin/modprobe (Debian's 6.12 modules are xz-compressed).
BUSYBOX_INITTAB = """\
# BusyBox init (shrinkd tests): the boot a Buildroot board has
::sysinit:/usr/local/lib/shrinkd-vmtest/rcS
::once:/usr/local/lib/shrinkd-vmtest/run-busybox
::shutdown:/usr/local/lib/shrinkd-vmtest/rcK
"""

BUSYBOX_PATH = "/usr/local/lib/shrinkd-vmtest/bin:/sbin:/usr/sbin:/bin:/usr/bin"

BUSYBOX_RCS = f"""\
#!/usr/local/lib/shrinkd-vmtest/bin/sh
export PATH={BUSYBOX_PATH}
mount -t proc proc /proc
mount -o remount,rw /
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug
hostname board
for script in /etc/init.d/S??*; do
    [ -x "$script" ] && "$script" start
done > /run/rcS.log 2>&1
"""

BUSYBOX_RCK = f"""\
#!/usr/local/lib/shrinkd-vmtest/bin/sh
export PATH={BUSYBOX_PATH}
for script in $(ls -r /etc/init.d/S??* 2>/dev/null); do
    [ -x "$script" ] && "$script" stop
done
"""

BUSYBOX_RUNNER = f"""\
#!/usr/local/lib/shrinkd-vmtest/bin/sh
# shrinkd tests (tests/vm.py) under BusyBox init: run this boot's script from the host, then reboot or power off.
export PATH={BUSYBOX_PATH}
B=/mnt/out/boots
next_or_off() {{ sync; if [ -e "$B/$(($1 + 1)).sh" ]; then reboot; else poweroff; fi; }}
/sbin/modprobe -a 9pnet_virtio 9p
mkdir -p /mnt/out /mnt/repo
mountpoint -q /mnt/out || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /mnt/out \\
    || {{ echo "vmtest: cannot mount the host's run folder"; poweroff; exit 1; }}
mountpoint -q /mnt/repo || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro repo /mnt/repo
n=1
while [ -e "$B/$n.status" ]; do n=$((n + 1)); done
if [ ! -e "$B/$n.sh" ]; then poweroff; exit 0; fi
if [ -e "$B/$n.started" ]; then
    echo crashed > "$B/$n.status"
    poweroff; exit 0
fi
cut -d' ' -f1 /proc/uptime > "$B/$n.started"
cd /mnt/repo
OUT=/mnt/out REPO=/mnt/repo PY=/usr/bin/python3 BOOT=$n PYTHONDONTWRITEBYTECODE=1 /bin/bash "$B/$n.sh" > "$B/$n.log" 2>&1
echo $? > "$B/$n.status"
next_or_off "$n"
"""

UNIT = """\
[Unit]
Description=shrinkd tests: run the host's script for this boot
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/lib/shrinkd-vmtest/run
TimeoutStartSec=infinity
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""

# Timers that would start apt or disk jobs in the middle of a test (apt-daily takes
# the dpkg lock), and first-boot prompts that would wait on the console.
MASKED = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "systemd-tmpfiles-clean.timer",
    "systemd-firstboot.service",
)

CUSTOMIZE_HOOK = (
    """\
set -e
R="$1"
for f in $DIVERTED; do
    rm "$R$f"
    chroot "$R" dpkg-divert --quiet --local --rename --remove "$f"
done
echo '/dev/vda / ext4 rw,errors=remount-ro 0 0' > "$R/etc/fstab"
echo board > "$R/etc/hostname"
echo "$MACHINE_ID" > "$R/etc/machine-id"
mkdir -p "$R/usr/local/lib/shrinkd-vmtest" "$R/etc/systemd/system/multi-user.target.wants" "$R/mnt/out" "$R/mnt/repo"
cp "$HOOKS/run" "$R/usr/local/lib/shrinkd-vmtest/run"
chmod 0755 "$R/usr/local/lib/shrinkd-vmtest/run"
cp "$HOOKS/shrinkd-vmtest.service" "$R/etc/systemd/system/shrinkd-vmtest.service"
ln -sf /etc/systemd/system/shrinkd-vmtest.service "$R/etc/systemd/system/multi-user.target.wants/"
ln -sf /lib/systemd/system/multi-user.target "$R/etc/systemd/system/default.target"
for unit in $MASKED; do ln -sf /dev/null "$R/etc/systemd/system/$unit"; done
# BusyBox init for the boots that ask for it (BUSYBOX_INITTAB)
cp "$HOOKS/inittab" "$R/etc/inittab"
for f in rcS rcK run-busybox; do
    cp "$HOOKS/$f" "$R/usr/local/lib/shrinkd-vmtest/$f"
    chmod 0755 "$R/usr/local/lib/shrinkd-vmtest/$f"
done
ln -sf /bin/busybox "$R/usr/local/lib/shrinkd-vmtest/init"
mkdir -p "$R/usr/local/lib/shrinkd-vmtest/bin"
for applet in $(chroot "$R" /bin/busybox --list); do ln -sf /bin/busybox "$R/usr/local/lib/shrinkd-vmtest/bin/$applet"; done
# No network in the guest: apt must not look for recommended packages.
echo 'APT::Install-Recommends "false";' > "$R/etc/apt/apt.conf.d/90shrinkd-tests"
"""
)


@dataclass(frozen=True)
class Image:
    """A built image: the disk and the kernels beside it."""

    arch: str
    dir: Path

    @property
    def disk(self) -> Path:
        return self.dir / "root.img"

    @property
    def manifest(self) -> Dict[str, object]:
        data: Dict[str, object] = json.loads((self.dir / "manifest.json").read_text())
        return data

    def releases(self) -> List[str]:
        return sorted(p.name[len("vmlinuz-") :] for p in self.dir.glob("vmlinuz-*"))

    def kernel(self, release: str) -> Tuple[Path, Path]:
        return self.dir / f"vmlinuz-{release}", self.dir / f"initrd.img-{release}"


def cache_root() -> Path:
    return Path(os.environ.get("SHRINKD_TEST_CACHE") or DEFAULT_CACHE)


def packages(arch: str, kernel_packages: Sequence[str]) -> List[str]:
    return sorted(set(BASE_PACKAGES) | set(ARCH_PACKAGES.get(arch, ())) | set(kernel_packages))


def recipe(arch: str, kernel_packages: Sequence[str]) -> Dict[str, object]:
    return {
        "version": RECIPE_VERSION,
        "arch": arch,
        "packages": packages(arch, kernel_packages),
        "sources": SOURCES,
        "essential_hook": ESSENTIAL_HOOK,
        "diverted": DIVERTED,
        "initrd_modules": INITRD_MODULES,
        "customize_hook": CUSTOMIZE_HOOK,
        "runner": RUNNER,
        "unit": UNIT,
        "masked": MASKED,
        "busybox": [BUSYBOX_INITTAB, BUSYBOX_RCS, BUSYBOX_RCK, BUSYBOX_RUNNER],
    }


def key(arch: str, kernel_packages: Sequence[str]) -> str:
    text = json.dumps(recipe(arch, kernel_packages), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def missing_tools(arch: str) -> Optional[str]:
    """None when an image of `arch` can be built here, else what is missing."""
    for tool, package in (("mmdebstrap", "mmdebstrap"), ("mkfs.ext4", "e2fsprogs"), ("qemu-img", "qemu-utils")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed ({package}): run scripts/setup.sh"
    if arch in QEMU_USER and shutil.which(f"{QEMU_USER[arch]}-static") is None:
        return "qemu-user-static is not installed: run scripts/setup.sh"
    if arch in QEMU_USER and shutil.which("arch-test") is None:  # mmdebstrap refuses a foreign architecture without it
        return "arch-test is not installed: run scripts/setup.sh"
    return None


def ensure_binfmt(arch: str) -> None:
    """Foreign binaries run through qemu-user: binfmt_misc mounted, the interpreter registered."""
    if arch not in QEMU_USER:
        return
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], check=True)
    if not (binfmt / QEMU_USER[arch]).exists():
        subprocess.run(["update-binfmts", "--enable", QEMU_USER[arch]], check=True, capture_output=True)
    if not (binfmt / QEMU_USER[arch]).exists():
        raise RuntimeError(f"binfmt_misc has no {QEMU_USER[arch]} entry: is qemu-user-static installed?")


def build(arch: str, kernel_packages: Sequence[str], log: Optional[Path] = None) -> Image:
    """The image for `arch` with these kernel packages: from the cache, or built now (minutes)."""
    root = cache_root() / "images"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{arch}-{key(arch, kernel_packages)}"
    if (final / "manifest.json").exists():
        return Image(arch, final)
    with open(root / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building it
        if not (final / "manifest.json").exists():
            _build(arch, kernel_packages, final, log)
    return Image(arch, final)


def _run(command: Sequence[str], log: Path, env: Optional[Dict[str, str]] = None) -> float:
    """Run a build step, its output appended to the log; returns the CPU seconds it used (with its children).

    CPU time is what a step would take on an idle machine (the builds are single-threaded
    at heart); wall time here depends on what else runs."""
    with open(log, "a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text()[-4000:]
        raise RuntimeError(f"{command[0]} failed ({process.returncode}); last lines of {log}:\n{tail}")
    return usage.ru_utime + usage.ru_stime


def _build(arch: str, kernel_packages: Sequence[str], final: Path, log: Optional[Path]) -> None:
    problem = missing_tools(arch)
    if problem:
        raise RuntimeError(problem)
    ensure_binfmt(arch)
    work = final.with_name(final.name + ".building")
    tree = work / "tree"
    # A tree that mmdebstrap finished (same key: same recipe) is kept when a later step failed.
    resumed = (work / "tree.done").exists()
    if work.exists() and not resumed:
        shutil.rmtree(work)
    work.mkdir(exist_ok=True)
    log = log or work / "build.log"
    hooks = work / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "essential.sh").write_text(ESSENTIAL_HOOK)
    (hooks / "customize.sh").write_text(CUSTOMIZE_HOOK)
    (hooks / "run").write_text(RUNNER)
    (hooks / "shrinkd-vmtest.service").write_text(UNIT)
    for name, text in (("inittab", BUSYBOX_INITTAB), ("rcS", BUSYBOX_RCS), ("rcK", BUSYBOX_RCK),
                       ("run-busybox", BUSYBOX_RUNNER)):
        (hooks / name).write_text(text)
    (hooks / "sources.list").write_text(SOURCES)
    env = dict(os.environ, HOOKS=str(hooks), MASKED=" ".join(MASKED), DIVERTED=" ".join(DIVERTED),
               MACHINE_ID=hashlib.md5(final.name.encode()).hexdigest())
    started = time.monotonic()
    command = [
        "nice", "-n", "10", "mmdebstrap", "--variant=apt", f"--architectures={arch}",
        f"--include={','.join(packages(arch, kernel_packages))}",
        f"--essential-hook=sh {hooks / 'essential.sh'} \"$1\"",
        f"--customize-hook=sh {hooks / 'customize.sh'} \"$1\"",
        "bookworm", str(tree), str(hooks / "sources.list"),
    ]
    # The archive's mirrors are sometimes mid-sync (an index of the wrong size): try again.
    # An index of bookworm-security that stays broken for this architecture is left out
    # (the manifest says so): the kernels then come from the bookworm point release.
    for attempt in range(0 if resumed else 3):
        try:
            cpu = _run(command, log, env=env)
            (work / "tree.done").write_text(f"{time.monotonic() - started:.1f} {cpu:.1f}\n")
            break
        except RuntimeError as error:
            if attempt == 2:
                raise
            shutil.rmtree(tree, ignore_errors=True)
            if attempt == 1 and "debian-security" in str(error) and "Mirror sync" in str(error):
                without = "".join(line + "\n" for line in SOURCES.splitlines() if SECURITY not in line)
                (hooks / "sources.list").write_text(without)
                continue
            time.sleep(60)
    debootstrap_s, cpu_s = (float(word) for word in (work / "tree.done").read_text().split()[:2])
    rest_started = time.monotonic()
    versions = dict(
        line.split("\t", 1)
        for line in subprocess.run(
            ["dpkg-query", f"--admindir={tree / 'var/lib/dpkg'}", "-W", "-f", "${Package}\t${Version}\n"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()
    )
    kernels = sorted(p.name for p in (tree / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise RuntimeError(f"{arch}: no kernel in the image's /boot")
    for name in kernels:
        release = name[len("vmlinuz-") :]
        cpu_s += _run(["nice", "-n", "10", "depmod", "-b", str(tree), release], log)
        initrd = tree / "boot" / f"initrd.img-{release}"
        make_initrd(tree, release, initrd)
        shutil.copy(tree / "boot" / name, work / name)
        shutil.copy(initrd, work / initrd.name)
    used_mb = int(subprocess.run(["du", "-sm", str(tree)], capture_output=True, text=True, check=True).stdout.split()[0])
    # Room for DKMS builds, packages and logs written by the tests (the image is sparse).
    size_mb = used_mb + 2048
    cpu_s += _run(["nice", "-n", "10", "mkfs.ext4", "-q", "-F", "-L", "board-root", "-d", str(tree),
          str(work / "root.img"), f"{size_mb}M"], log)
    shutil.rmtree(tree)
    manifest = {
        "arch": arch,
        "key": final.name,
        "recipe": recipe(arch, kernel_packages),
        "sources_used": (hooks / "sources.list").read_text(),
        "releases": [name[len("vmlinuz-") :] for name in kernels],
        "versions": {name: versions[name] for name in sorted(versions)},
        "build_seconds": round(debootstrap_s + time.monotonic() - rest_started, 1),
        "mmdebstrap_seconds": round(debootstrap_s, 1),
        "cpu_seconds": round(cpu_s, 1),
        "tree_mb": used_mb,
    }
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (work / "tree.done").unlink()
    if final.exists():
        shutil.rmtree(final)
    work.rename(final)


def make_initrd(tree: Path, release: str, dest: Path) -> None:
    """An initramfs as tiny-initramfs' mktirfs makes it, written on the host for a tree of any architecture."""
    shown = subprocess.run(
        ["modprobe", "-d", str(tree), "-S", release, "--show-depends", "--ignore-install", "-a", *INITRD_MODULES],
        capture_output=True, text=True, check=True,
    ).stdout
    modules = [Path(line.split()[1]) for line in shown.splitlines() if line.startswith("insmod ")]
    inits = list(tree.glob("usr/lib/*/tiny-initramfs/init-static"))
    if len(inits) != 1:
        raise RuntimeError(f"{tree}: expected one tiny-initramfs init-static, found {inits}")
    stage = dest.with_name(dest.name + ".stage")
    if stage.exists():
        shutil.rmtree(stage)
    for sub in ("dev", "proc", "target"):
        (stage / sub).mkdir(parents=True)
    shutil.copy(inits[0], stage / "init")
    listed = []
    for module in modules:
        source = module if module.is_relative_to(tree) else tree / module.relative_to("/")
        name = source.name.removesuffix(".xz")
        # tiny-initramfs' init loads modules as they are: store them uncompressed.
        if source.suffix == ".xz":
            data = subprocess.run(["xz", "-dc", str(source)], capture_output=True, check=True).stdout
            (stage / name).write_bytes(data)
        else:
            shutil.copy(source, stage / name)
        if f"/{name}" not in listed:
            listed.append(f"/{name}")
    (stage / "modules").write_text("".join(f"{m}\n" for m in listed))
    names = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
    with open(dest, "wb") as out:
        cpio = subprocess.Popen(["cpio", "-o", "--quiet", "-H", "newc", "-R", "0:0"], cwd=stage,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        gzip = subprocess.Popen(["gzip", "-9n"], stdin=cpio.stdout, stdout=out)
        assert cpio.stdin is not None and cpio.stdout is not None
        cpio.stdout.close()
        cpio.stdin.write(("\n".join(names) + "\n").encode())
        cpio.stdin.close()
        if cpio.wait() != 0 or gzip.wait() != 0:
            raise RuntimeError(f"{dest}: cpio or gzip failed")
    shutil.rmtree(stage)


def main(argv: Optional[List[str]] = None) -> int:
    from tests.vm import TARGETS, image_for

    parser = argparse.ArgumentParser(description="Build (or find) the board targets' root file system images.")
    parser.add_argument("arch", nargs="*", help="Debian architectures (default: every target's)")
    args = parser.parse_args(argv)
    arches = args.arch or sorted({t.arch for t in TARGETS.values()})
    for arch in arches:
        target = next(t for t in TARGETS.values() if t.arch == arch)
        started = time.monotonic()
        image = image_for(target)
        print(f"{arch}: {image.dir} ({time.monotonic() - started:.0f} s; built in {image.manifest['build_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
