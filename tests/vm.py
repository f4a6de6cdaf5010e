"""The single way shrinkd's tests boot a real kernel: Debian's kernels under QEMU via virtme-ng.

The guest sees this machine's file system read-only (so the repo, its .venv and
the host's tools are there) and one writable folder, the run directory, where the
script, its output files and any disk images live. Software emulation is used:
KVM boots hang on the machines this project is built on.

    result = run_in_vm("cat /proc/buddyinfo", kernel="6.1", memory="1G")
    result.check()            # raises VMError with the guest's output on failure
    result.out_dir / "file"   # files the guest wrote to $OUT

Usable from the shell too: `python -m tests.vm [--kernel 6.12] [--memory 2G] -- CMD...`.
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
from typing import Any, Dict, List, Optional, Sequence, Union

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
    for option in append:
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


def build_module(out: Path, series: str, tree: Path = REPO / "kmod", name: str = "shrinkmem") -> Path:
    """A module built from `tree` (shrinkmem's by default; a copy under `out`) against a kernel series' headers."""
    source = out / tree.name
    shutil.copytree(
        tree,
        source,
        ignore=shutil.ignore_patterns("*.ko", "*.o", ".*.cmd", "*.mod*", "Module.symvers", "modules.order"),
    )
    built = subprocess.run(
        ["make", "-C", str(headers_dir(series)), f"M={source}", "modules"], capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        raise VMError(f"building the module against {headers_dir(series)} failed:\n{built.stdout}{built.stderr}")
    return source / f"{name}.ko"


def journal_entries(path: Path) -> List[Dict[str, Any]]:
    """The entries of `journalctl -o json` output saved by a guest."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


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
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command to run (after --)")
    args = parser.parse_args(argv)
    words = [w for w in args.command if w != "--"] or ["uname -a"]
    result = run_in_vm(" ".join(words), kernel=args.kernel, memory=args.memory, numa=args.numa)
    sys.stdout.write(result.output)
    print(f"[guest exit {result.returncode}, {result.seconds:.0f} s, files in {result.out_dir}]", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
