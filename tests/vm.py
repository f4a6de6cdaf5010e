"""The single way shrinkd's tests boot a real kernel: Debian's kernels under QEMU via virtme-ng.

The guest sees this machine's file system read-only (so the repo, its .venv and
the host's tools are there) and one writable folder, the run directory, where the
script, its output files and any disk images live. Software emulation is used:
KVM boots hang on the machines this project is built on.

    result = run_in_vm("cat /proc/buddyinfo", kernel="6.1", memory="1G")
    result.check()            # raises VMError with the guest's output on failure
    result.out_dir / "file"   # files the guest wrote to $OUT

Usable from the shell too: `python -m tests.vm [--kernel 6.12] [--memory 2G] -- CMD...`.

Boards: a target (TARGETS: x86_64, arm64 with 4 KiB and 16 KiB pages, 32-bit ARM with
HighMem) boots its Debian kernel on a Debian root file system of its own architecture
(tests/rootfs.py builds and caches one per architecture), with systemd as PID 1, as a
board boots. Each boot runs one script given by the host (a unit in the image runs it
after multi-user.target), then the guest powers off and the host powers it on again for
the next script (a power cycle: a reboot inside one QEMU process gets slower with each
reboot under emulation); the disk (a copy-on-write overlay of the cached image) keeps
what each boot changed.

    board = Board(TARGETS["arm64-6.1"])
    result = board.run(["apt-get install -y ./x.deb", "systemctl is-active shrinkd"], files={...})
    result.boots[1].check().log     # the second boot's output; result.out_dir holds the files

Shell: `python -m tests.vm --target arm64-6.1 -- CMD...`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from tests import rootfs

REPO = Path(__file__).resolve().parent.parent
# Run directories live in the repo (not /tmp: the guest mounts its own tmpfs there).
VM_ROOT = REPO / ".vm"
BOOT = Path("/boot")
DEFAULT_TIMEOUT = 900.0


class VMError(RuntimeError):
    pass


def kernels() -> dict[str, Path]:
    """Installed Debian kernels by series ("6.1", "6.12"), newest build of each."""
    found: dict[str, Path] = {}
    for image in sorted(BOOT.glob("vmlinuz-*"), key=lambda p: _version_key(p.name)):
        match = re.match(r"vmlinuz-(\d+)\.(\d+)", image.name)
        if match and (Path("/lib/modules") / image.name[len("vmlinuz-") :]).is_dir():
            found[f"{match.group(1)}.{match.group(2)}"] = image
    return found


def _version_key(name: str) -> List[int]:
    return [int(part) for part in re.findall(r"\d+", name)]


def kernel_image(series: Union[str, Path]) -> Path:
    """The image of an installed Debian kernel series, or `series` itself when it is a path to an image."""
    if isinstance(series, Path):
        if not series.is_file():
            raise VMError(f"{series}: no such kernel image")
        return series
    found = kernels()
    if series not in found:
        raise VMError(f"no Debian {series} kernel in /boot (have {sorted(found)}): run scripts/setup.sh")
    return found[series]


# Every guest's kernel command line: under software emulation on a shared 2-core host a vCPU
# thread can wait tens of seconds for a host CPU (a soft lockup "stuck for 52s" in init and
# udev workers was seen with four emulated CPUs on two host cores). The lockup and RCU stall
# detectors measure wall time, so they get their longest thresholds (soft lockup 2 x 60 s,
# RCU stall 300 s): a stall in the module's code still shows, as it does not end.
EMULATION_CMDLINE = ("watchdog_thresh=60", "rcupdate.rcu_cpu_stall_timeout=300")


def kernel_release(series: str) -> str:
    """The `uname -r` of an installed kernel series, e.g. 6.1.0-56-amd64."""
    return kernel_image(series).name[len("vmlinuz-") :]


def headers_dir(series: str) -> Path:
    """The kernel build tree (headers) for a series, to build modules against."""
    return Path("/lib/modules") / kernel_release(series) / "build"


@dataclass
class VMResult:
    returncode: int
    output: str
    out_dir: Path
    seconds: float

    def check(self) -> VMResult:
        if self.returncode != 0:
            raise VMError(f"guest script failed with exit code {self.returncode}:\n{self.output[-6000:]}")
        return self


def new_run_dir(prefix: str = "run-") -> Path:
    VM_ROOT.mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=VM_ROOT))


def run_in_vm(
    script: str,
    *,
    kernel: Union[str, Path] = "6.1",
    memory: str = "1G",
    cpus: int = 2,
    numa: Optional[Sequence[str]] = None,
    disks: Sequence[Path] = (),
    append: Sequence[str] = (),
    out_dir: Optional[Path] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> VMResult:
    """Boot a Debian kernel (a series, e.g. "6.1", or the path of a kernel image) and run a bash script in it as root.

    The script runs with `set -eu` off (it decides), cwd at the repo, and $OUT
    set to a writable folder shared with the host (returned as result.out_dir).
    $REPO is the repo and $PY the repo's virtualenv python. `numa` gives one
    size per NUMA node (they must add up to `memory`); `disks` are files
    attached as virtio-blk disks (/dev/vda, /dev/vdb, ... in the guest).
    """
    image = kernel_image(kernel)
    out = out_dir or new_run_dir()
    out.mkdir(parents=True, exist_ok=True)
    python = REPO / ".venv" / "bin" / "python"
    wrapper = out / "guest.sh"
    wrapper.write_text(
        "#!/bin/bash\n"
        f"export OUT={shlex.quote(str(out))} REPO={shlex.quote(str(REPO))}\n"
        f"export PY={shlex.quote(str(python if python.exists() else sys.executable))}\n"
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH\n"
        "mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null\n"
        f"cd {shlex.quote(str(REPO))}\n"
        'bash "$OUT/script.sh"\n'
        'echo "vm-exit-code: $?" > "$OUT/exit-code"\n'
    )
    (out / "script.sh").write_text(script)
    command = [
        "vng",
        "--run",
        str(image),
        "--disable-kvm",
        "--memory",
        memory,
        "--cpus",
        str(cpus),
        "--rwdir",
        str(out),
    ]
    for size in numa or ():
        command += ["--numa", size]
    for disk in disks:
        command += ["--disk", str(disk)]
    for option in (*EMULATION_CMDLINE, *append):
        command += ["--append", option]
    command += ["--exec", f"bash {shlex.quote(str(wrapper))}"]
    started = time.monotonic()
    # A session of its own, so that on a timeout vng, virtme and qemu all go.
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise VMError(f"guest did not finish within {timeout:.0f} s:\n{output[-6000:]}") from None
    seconds = time.monotonic() - started
    code_file = out / "exit-code"
    if not code_file.exists():
        raise VMError(f"guest never finished its script (vng exit {process.returncode}):\n{output[-6000:]}")
    returncode = int(code_file.read_text().split(":")[1])
    return VMResult(returncode, output, out, seconds)


def build_module(
    out: Path,
    series: str,
    tree: Path = REPO / "kmod",
    name: str = "shrinkmem",
    kdir: Optional[Path] = None,
    make_vars: Sequence[str] = (),
) -> Path:
    """A module built from `tree` (shrinkmem's by default; a copy under `out`) against a kernel series'
    headers, or against the tree `kdir` with `make_vars` (a test kernel of tests/testkernels.py)."""
    kdir = kdir or headers_dir(series)
    source = out / tree.name
    shutil.copytree(
        tree,
        source,
        ignore=shutil.ignore_patterns("*.ko", "*.o", ".*.cmd", "*.mod*", "Module.symvers", "modules.order"),
    )
    built = subprocess.run(
        ["make", "-C", str(kdir), *make_vars, f"M={source}", "modules"], capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        raise VMError(f"building the module against {kdir} failed:\n{built.stdout}{built.stderr}")
    return source / f"{name}.ko"


def journal_entries(path: Path) -> List[Dict[str, Any]]:
    """The entries of `journalctl -o json` output saved by a guest."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


# ---------------------------------------------------------------- boards


@dataclass(frozen=True)
class Target:
    """A board: a Debian kernel flavour of one architecture, and the QEMU machine it boots on."""

    name: str
    arch: str  # Debian architecture of the guest's user space
    series: str  # kernel series: "6.1", "6.12"
    flavour: str  # the end of `uname -r`: amd64, arm64, arm64-16k, armmp-lpae
    packages: Tuple[str, ...]  # Debian packages of the kernel and its headers
    qemu: Tuple[str, ...]  # the emulator, its machine and CPU
    console: str
    memory: str

    def release(self, releases: Sequence[str]) -> str:
        """This target's `uname -r` among an image's kernels."""
        pattern = re.compile(rf"{re.escape(self.series)}\.\d+[-+].*-{re.escape(self.flavour)}")
        found = [r for r in releases if pattern.fullmatch(r)]
        if len(found) != 1:
            raise VMError(f"{self.name}: expected one {self.series} {self.flavour} kernel in the image, found {releases}")
        return found[0]


# x86 boots like virtme-ng without KVM (q35, -cpu max). On arm64, `-cpu max` emulates
# BTI and pointer authentication as on recent SoCs; pauth-impdef selects QEMU's cheap
# implementation-defined PAC algorithm instead of QARMA5 (same instructions and traps,
# much less emulation time). 32-bit ARM: Cortex-A15 with LPAE; 2 GB puts about 1.2 GB in
# HighMem (lowmem ends near 760 MB); highmem=off keeps the machine's devices below 4 GB.
TARGETS: Dict[str, Target] = {
    t.name: t
    for t in (
        Target("x86_64-6.1", "amd64", "6.1", "amd64", ("linux-image-amd64", "linux-headers-amd64"),
               ("qemu-system-x86_64", "-M", "q35", "-cpu", "max"), "ttyS0", "1536M"),
        Target("x86_64-6.12", "amd64", "6.12", "amd64", ("linux-image-6.12-amd64", "linux-headers-6.12-amd64"),
               ("qemu-system-x86_64", "-M", "q35", "-cpu", "max"), "ttyS0", "1536M"),
        Target("arm64-6.1", "arm64", "6.1", "arm64", ("linux-image-arm64", "linux-headers-arm64"),
               ("qemu-system-aarch64", "-M", "virt", "-cpu", "max,pauth-impdef=on"), "ttyAMA0", "1536M"),
        Target("arm64-16k-6.12", "arm64", "6.12", "arm64-16k",
               ("linux-image-6.12-arm64-16k", "linux-headers-6.12-arm64-16k"),
               ("qemu-system-aarch64", "-M", "virt", "-cpu", "max,pauth-impdef=on"), "ttyAMA0", "1536M"),
        Target("armhf-lpae-6.1", "armhf", "6.1", "armmp-lpae", ("linux-image-armmp-lpae", "linux-headers-armmp-lpae"),
               ("qemu-system-arm", "-M", "virt,highmem=off", "-cpu", "cortex-a15"), "ttyAMA0", "2G"),
    )
}


def image_for(target: Target) -> rootfs.Image:
    """The cached root file system of the target's architecture (built on first use)."""
    kernels = sorted({p for t in TARGETS.values() if t.arch == target.arch for p in t.packages})
    return rootfs.build(target.arch, kernels)


@dataclass
class Boot:
    """One boot of a board: the script's exit code (None: never ran; "crashed": the guest died under it)."""

    index: int
    status: Optional[str]
    log: str
    started_uptime: Optional[float]

    def check(self) -> Boot:
        if self.status != "0":
            raise VMError(f"boot {self.index}: script status {self.status}:\n{self.log[-6000:]}")
        return self


@dataclass(frozen=True)
class BootWith:
    """What one boot of a board boots other than its image's kernel for the target: another kernel
    (a test kernel with what it needs to find the root disk built in: no initramfs), and words
    added to the kernel's command line (init=... for a PID 1 other than systemd)."""

    kernel: Optional[Path] = None
    initrd: Optional[Path] = None
    append: Tuple[str, ...] = ()


@dataclass
class BoardResult:
    boots: List[Boot]
    console: str
    out_dir: Path
    seconds: float
    cpu_seconds: float  # QEMU's user + system time: on an idle machine the run takes at most this long

    def check(self) -> BoardResult:
        for boot in self.boots:
            if boot.status != "0":
                raise VMError(
                    f"boot {boot.index}: script status {boot.status}:\n{boot.log[-5000:]}\n"
                    f"--- console (end)\n{self.console[-3000:]}"
                )
        return self


class Board:
    """A target's guest: a copy-on-write disk over its architecture's cached image, booted on demand.

    The disk lives in the run folder and keeps its changes across boots and runs, as a
    board's storage does. In the guest, each boot's script runs as root under bash in
    /mnt/repo (this repository, read-only), with $OUT the run folder (read-write,
    shared with the host), $REPO, $PY (the guest's python3) and $BOOT (1, 2, ...).
    """

    def __init__(self, target: Target, run_dir: Optional[Path] = None) -> None:
        self.target = target
        self.image = image_for(target)
        self.release = target.release(self.image.releases())
        self.dir = run_dir or new_run_dir(f"board-{target.name}-")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.disk = self.dir / "root.qcow2"
        if not self.disk.exists():
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(self.image.disk), str(self.disk)],
                check=True,
                capture_output=True,
            )
        self._boots = 0

    def command(self, disks: Sequence[Path], cpus: int, memory: str, boot: Optional[BootWith] = None) -> List[str]:
        boot = boot or BootWith()
        kernel, initrd = (boot.kernel, boot.initrd) if boot.kernel else self.image.kernel(self.release)
        emulator, *machine = self.target.qemu
        command = [emulator, *machine, "-accel", "tcg", "-m", memory, "-smp", str(cpus)]
        command += ["-kernel", str(kernel)] + (["-initrd", str(initrd)] if initrd else [])
        command += ["-append", " ".join([f"root=/dev/vda rw console={self.target.console} panic=-1 loglevel=4",
                                          *EMULATION_CMDLINE, *boot.append])]
        for index, disk in enumerate([self.disk, *disks]):
            fmt = "qcow2" if disk.suffix == ".qcow2" else "raw"
            command += ["-drive", f"file={disk},if=none,id=vd{index},format={fmt},cache=unsafe"]
            command += ["-device", f"virtio-blk-pci,drive=vd{index}"]
        for tag, path, readonly in (("out", self.dir, False), ("repo", REPO, True)):
            command += ["-fsdev", f"local,id={tag},path={path},security_model=none{',readonly=on' if readonly else ''}"]
            command += ["-device", f"virtio-9p-pci,fsdev={tag},mount_tag={tag}"]
        # append=on: each boot's QEMU adds to the run's console log.
        command += ["-nic", "none", "-display", "none", "-monitor", "none",
                    "-chardev", f"file,id=console,path={self.dir / 'console.log'},append=on", "-serial", "chardev:console"]
        return command

    def run(
        self,
        scripts: Sequence[str],
        *,
        files: Mapping[str, str | bytes | Path] = {},
        disks: Sequence[Path] = (),
        cpus: int = 2,
        memory: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        boot_with: Mapping[int, BootWith] = {},
    ) -> BoardResult:
        """Run each script in a boot of its own: power on, run it, power off (a power cycle between scripts).

        `files` are put in the run folder first (name -> text, bytes or a file to copy);
        `disks` are attached after the root disk (/dev/vdb, /dev/vdc, ...). `boot_with` says, by the
        script's index in `scripts` (0 for the first), what that boot boots instead (a BootWith).
        Each boot is a QEMU process of its own, as a board is power-cycled: under software
        emulation a reboot inside one QEMU process slowed systemd's start with every reboot
        (from exec to its first module load: 1 s, then 19 s and 36 s with nothing installed,
        220 s after the package install), a fresh process does not.
        """
        boots_dir = self.dir / "boots"
        boots_dir.mkdir(exist_ok=True)
        for name, content in files.items():
            dest = self.dir / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copy(content, dest)
            elif isinstance(content, bytes):
                dest.write_bytes(content)
            else:
                dest.write_text(content)
        # Boots are numbered across runs of the same disk; earlier ones are done.
        first = self._boots + 1
        numbers = list(range(first, first + len(scripts)))
        self._boots += len(scripts)
        (self.dir / "console.log").unlink(missing_ok=True)
        cpu_seconds = 0.0
        started = time.monotonic()
        for index, (number, script) in enumerate(zip(numbers, scripts)):
            # The guest powers off after a script when the next one is not there yet.
            (boots_dir / f"{number}.sh").write_text(script)
            cpu_seconds += self._power_on(disks, cpus, memory, started + timeout, timeout, boot_with.get(index))
            if not (boots_dir / f"{number}.status").exists():
                break  # its script never ran: the guest's runner would take it for the next boot's
        seconds = time.monotonic() - started
        text = self._console()
        boots = []
        for number in numbers:
            status_file, log_file, start_file = (boots_dir / f"{number}.{ext}" for ext in ("status", "log", "started"))
            boots.append(
                Boot(
                    number - first + 1,
                    status_file.read_text().strip() if status_file.exists() else None,
                    log_file.read_text(errors="replace") if log_file.exists() else "",
                    float(start_file.read_text()) if start_file.exists() else None,
                )
            )
        return BoardResult(boots, text, self.dir, seconds, cpu_seconds)

    def _power_on(self, disks: Sequence[Path], cpus: int, memory: Optional[str], deadline: float,
                  timeout: float, boot: Optional[BootWith] = None) -> float:
        """One QEMU process, until the guest powers off: the CPU seconds it used."""
        with open(self.dir / "qemu.log", "w") as qemu_log:
            # A session of its own, so that on a timeout QEMU and anything it started go.
            process = subprocess.Popen(
                self.command(disks, cpus, memory or self.target.memory, boot),
                stdin=subprocess.DEVNULL,
                stdout=qemu_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # wait4 for the CPU time QEMU used: what the run costs an idle machine, whatever else runs here.
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise VMError(f"{self.target.name}: guest did not power off within {timeout:.0f} s:\n{self._console()[-6000:]}")
            time.sleep(0.5)
        if process.returncode != 0:
            output = (self.dir / "qemu.log").read_text(errors="replace")
            raise VMError(f"{self.target.name}: QEMU exited with {process.returncode}: {output[-3000:]}\n{self._console()[-3000:]}")
        return float(usage.ru_utime + usage.ru_stime)

    def _console(self) -> str:
        """The serial console of this run's boots so far."""
        console = self.dir / "console.log"
        return console.read_text(errors="replace") if console.exists() else ""


def board_available(target: Target) -> Optional[str]:
    """None when this target can be booted here (its image may still have to be built), else why not."""
    if shutil.which(target.qemu[0]) is None:
        return f"{target.qemu[0]} is not installed: run scripts/setup.sh"
    return rootfs.missing_tools(target.arch)


def available() -> Optional[str]:
    """None when VMs can be booted here, else the reason they cannot."""
    if shutil.which("vng") is None:
        return "virtme-ng (vng) is not installed: run scripts/setup.sh"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86 is not installed: run scripts/setup.sh"
    if not kernels():
        return "no Debian kernel in /boot: run scripts/setup.sh"
    return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run a command in a Debian kernel under QEMU.")
    parser.add_argument("--kernel", default="6.1", help="kernel series: 6.1 or 6.12 (default 6.1)")
    parser.add_argument("--memory", default="1G")
    parser.add_argument("--numa", action="append", help="one NUMA node of this size (repeat)")
    parser.add_argument("--target", choices=sorted(TARGETS), help="boot a board target (systemd, its own root) instead")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command to run (after --)")
    args = parser.parse_args(argv)
    words = [w for w in args.command if w != "--"] or ["uname -a"]
    if args.target:
        board = Board(TARGETS[args.target])
        boot = board.run([" ".join(words)], memory=args.memory if args.memory != "1G" else None).boots[0]
        sys.stdout.write(boot.log)
        print(f"[guest status {boot.status}, files in {board.dir}]", file=sys.stderr)
        return 0 if boot.status == "0" else 1
    result = run_in_vm(" ".join(words), kernel=args.kernel, memory=args.memory, numa=args.numa)
    sys.stdout.write(result.output)
    print(f"[guest exit {result.returncode}, {result.seconds:.0f} s, files in {result.out_dir}]", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
