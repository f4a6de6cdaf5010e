"""Small test kernels built from Debian's linux-source-6.1, for what Debian's own kernels cannot show.

Every Debian kernel has hibernation, none has kCFI, none exports shrink_all_memory()
and none runs lockdep or KASAN. The shrinkmem tests need each of those, so this
module builds minimal x86_64 kernels. Four boot with tests/vm.py (virtme-ng); three
with clang-16, kCFI (CONFIG_CFI_CLANG), PROVE_LOCKING and KASAN:

    kcfi-debug-export   the export patch: the direct call works under kCFI, and the
                        whole module suite runs with lockdep and KASAN watching
    kcfi-debug          no export: the module must refuse (kCFI)
    kcfi-debug-nohib    no CONFIG_HIBERNATION: the module must refuse (no shrink_all_memory())

and one, built with gcc and no debug options, carries the upstream series (kmod/patches/upstream/)
instead of the export patch, and the module suite runs on the driver that series adds:

    upstream-6.1        the whole series applied, CONFIG_HIBERNATION=y, CONFIG_SHRINKMEM=m:
                        drivers/misc/shrinkmem.ko, built in the kernel tree, is what the
                        guest loads (its .ko is kept beside the image, in modules/)

One more boots a board (tests/vm.py's Board, with BootWith): a Debian root with systemd
as PID 1, so built with gcc, without the debug options (systemd must start in minutes
under emulation) and with what the board image and systemd need built in (BOARD_FRAGMENT):

    board-nohib         no CONFIG_HIBERNATION: the package must boot with no failed unit
                        while the module refuses (tests/test_nohib_board_vm.py)

A configuration is `make allnoconfig`, then the options virtme-ng needs to boot a
guest (`virtme-configkernel --dry-run`, without its optional extras), then ours
(FRAGMENTS below), then `make olddefconfig`; every option we ask for is checked to
have stuck. The three kCFI kernels share one source and object tree, built in place: each
differs from the first by the one-line export patch or by one option, so make rebuilds
only what that touches (a cold build is one full kernel and two short rebuilds).
board-nohib differs from them in many options and its compiler, so it has the gcc tree
to itself (one full build: 776 CPU seconds here) and leaves theirs as it was. upstream-6.1
has a gcc tree of its own too (trees/gcc-<source version>-series/), in which the series
stays applied: a change to a patch reverts the series as it was applied (copies kept in the
tree) and applies the new one, so make rebuilds only the files the change touches. Builds
run niced, two jobs, one at a time (a lock).

The cache lives outside the repository, under $SHRINKD_TEST_CACHE (default
/var/cache/shrinkd-tests)/kernels:

    trees/<compiler>-<source version>/   the shared source and object trees
    <name>-<key>/vmlinuz                 the image tests/vm.py boots
    <name>-<key>/build/                  what an out-of-tree module build needs
    <name>-<key>/modules/                modules.builtin, .builtin.modinfo, .order for a guest's
                                         /lib/modules/<release>/ (kernels built since they were added),
                                         and the modules a spec keeps (upstream-6.1: shrinkmem.ko)
    <name>-<key>/build-info.json         build seconds, compiler, the resolved config

<key> hashes everything that goes into the kernel: the source package version, the
compiler's version, the patch (or the bytes of each patch of the series, not its cover
letter), virtme's options and ours. A test asks for a kernel
with `ensure("kcfi-debug")`, which builds it when it is missing (a cold CI run builds
them all once) and returns at once when it is cached.

    python -m tests.testkernels build [NAME...]    build what is missing, print the times
    python -m tests.testkernels list               cached kernels, build times, sizes
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
SOURCE_PACKAGE = "linux-source-6.1"
EXPORT_PATCH = REPO / "kmod" / "patches" / "export-shrink_all_memory.patch"
SERIES_DIR = REPO / "kmod" / "patches" / "upstream"
# Raised when the way kernels are built changes, so that old cache entries are not reused.
BUILDER_VERSION = "2"
JOBS = 2
NICE = 10


class KernelBuildError(RuntimeError):
    pass


def cache_root() -> Path:
    return Path(os.environ.get("SHRINKD_TEST_CACHE", "/var/cache/shrinkd-tests")) / "kernels"


# What every test kernel has on top of virtme-ng's options: what the module and its
# tests use (modules, kprobes and kprobe events, swap on zram, ext4 on virtio-blk, debugfs,
# the freezer's pm_test, dynamic debug for the module's per-request log line), ACPI so that
# the guest can power off, no debug info.
BASE_FRAGMENT = """
CONFIG_64BIT=y
CONFIG_SMP=y
CONFIG_NR_CPUS=4
CONFIG_PRINTK=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_MULTIUSER=y
CONFIG_FUTEX=y
CONFIG_EPOLL=y
CONFIG_SIGNALFD=y
CONFIG_TIMERFD=y
CONFIG_EVENTFD=y
CONFIG_FILE_LOCKING=y
CONFIG_PROC_FS=y
CONFIG_PROC_SYSCTL=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_DEVTMPFS=y
CONFIG_DEBUG_FS=y
CONFIG_DYNAMIC_DEBUG=y
CONFIG_ACPI=y
CONFIG_BLK_DEV=y
CONFIG_VIRTIO_BLK=y
CONFIG_EXT4_FS=y
CONFIG_SWAP=y
CONFIG_CRYPTO=y
CONFIG_CRYPTO_LZO=y
CONFIG_ZRAM=y
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_KALLSYMS=y
CONFIG_KPROBES=y
CONFIG_FTRACE=y
CONFIG_KPROBE_EVENTS=y
CONFIG_PM=y
CONFIG_SUSPEND=y
CONFIG_PM_DEBUG=y
CONFIG_PM_SLEEP_DEBUG=y
CONFIG_DEBUG_INFO_NONE=y
CONFIG_KVM=n
CONFIG_DRM=n
CONFIG_FB=n
CONFIG_VIRTIO_MENU=y
CONFIG_VIRTIO_PCI=y
"""

# virtme-ng's options that these kernels leave out on purpose: graphics, KVM, debug info, and
# DAX for virtiofs, MMIO and balloon virtio (the guests use 9p over virtio-pci). Every other
# option virtme-ng asks for must hold: without VIRTIO_PCI (which allnoconfig turns off through
# VIRTIO_MENU) the guest cannot mount its root and panics.
VIRTME_LEFT_OUT = {
    "CONFIG_FB", "CONFIG_FB_VESA", "CONFIG_FRAMEBUFFER_CONSOLE", "CONFIG_KVM", "CONFIG_KVM_INTEL",
    "CONFIG_KVM_AMD", "CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "CONFIG_DAX_DRIVER", "CONFIG_FS_DAX",
    "CONFIG_ZONE_DEVICE", "CONFIG_VIRTIO_MMIO", "CONFIG_VIRTIO_BALLOON",
}

DEBUG_FRAGMENT = """
CONFIG_DEBUG_KERNEL=y
CONFIG_PROVE_LOCKING=y
CONFIG_DEBUG_ATOMIC_SLEEP=y
CONFIG_KASAN=y
CONFIG_KASAN_GENERIC=y
CONFIG_KASAN_INLINE=y
"""


@dataclass(frozen=True)
class KernelSpec:
    name: str
    compiler: str  # "gcc" or "clang"
    fragment: str
    export_patch: bool
    purpose: str
    # The upstream series (series_patches()) applied instead of the export patch, in a tree of its own.
    series: bool = False
    # Modules built in the tree that the cache keeps in modules/, by their path in the tree.
    keep_modules: Tuple[str, ...] = ()

    @property
    def make_vars(self) -> List[str]:
        return ["ARCH=x86_64"] + (["LLVM=-16"] if self.compiler == "clang" else [])

    def wanted(self) -> Dict[str, str]:
        """CONFIG_X -> value ("n" for off) that the resolved configuration must have."""
        wanted = parse_fragment(BASE_FRAGMENT + self.fragment)
        # DEBUG_INFO_NONE overrides virtme's DWARF choice where that choice is visible
        # (it needs DEBUG_KERNEL); what must hold everywhere is no debug info at all.
        del wanted["CONFIG_DEBUG_INFO_NONE"]
        wanted["CONFIG_DEBUG_INFO"] = "n"
        return wanted


KCFI_FRAGMENT = "CONFIG_CFI_CLANG=y\nCONFIG_CFI_PERMISSIVE=n\n" + DEBUG_FRAGMENT

# What a board's Debian bookworm root needs to boot with systemd 252 as PID 1 (tests/rootfs.py,
# tests/vm.py's Board): the root disk and the host's 9p shares built in (no initramfs, and the
# image's runner finds 9p without loading it), cgroup v2 with the memory and pids controllers,
# the namespaces, seccomp and cgroup BPF that the units' sandboxes (shrinkd.service's among
# them) use, autofs, fhandle, POSIX message queues, and what shrinkd reads or writes:
# PSI, compaction, transparent huge pages and /proc/config.gz (`shrinkd doctor` reads it). No KASAN, no lockdep: systemd must start in minutes under emulation.
BOARD_FRAGMENT = """
CONFIG_HIBERNATION=n
CONFIG_DEVTMPFS_MOUNT=y
CONFIG_IKCONFIG=y
CONFIG_IKCONFIG_PROC=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_EXT4_FS=y
CONFIG_EXT4_FS_POSIX_ACL=y
CONFIG_EXT4_FS_SECURITY=y
CONFIG_NET_9P=y
CONFIG_NET_9P_VIRTIO=y
CONFIG_9P_FS=y
CONFIG_UNIX=y
CONFIG_INOTIFY_USER=y
CONFIG_FHANDLE=y
CONFIG_AUTOFS_FS=y
CONFIG_TMPFS_POSIX_ACL=y
CONFIG_TMPFS_XATTR=y
CONFIG_POSIX_MQUEUE=y
CONFIG_SYSVIPC=y
CONFIG_CGROUPS=y
CONFIG_MEMCG=y
CONFIG_CGROUP_PIDS=y
CONFIG_CGROUP_BPF=y
CONFIG_BPF_SYSCALL=y
CONFIG_NAMESPACES=y
CONFIG_UTS_NS=y
CONFIG_IPC_NS=y
CONFIG_PID_NS=y
CONFIG_NET_NS=y
CONFIG_SECCOMP=y
CONFIG_SECCOMP_FILTER=y
CONFIG_PSI=y
CONFIG_COMPACTION=y
CONFIG_TRANSPARENT_HUGEPAGE=y
CONFIG_VM_EVENT_COUNTERS=y
CONFIG_KASAN=n
CONFIG_PROVE_LOCKING=n
"""

# The in-tree driver of the upstream series as a module, with what it depends on: the guest
# loads, reloads and unloads it as the suite does the out-of-tree module.
SERIES_FRAGMENT = """
CONFIG_HIBERNATION=y
CONFIG_SHRINKMEM=m
"""

SPECS: Dict[str, KernelSpec] = {
    spec.name: spec
    for spec in (
        KernelSpec(
            "kcfi-debug-export",
            "clang",
            "CONFIG_HIBERNATION=y\n" + KCFI_FRAGMENT,
            True,
            "kCFI with the export patch, lockdep (PROVE_LOCKING) and KASAN: the direct call works under kCFI;"
            " the whole module suite runs here",
        ),
        KernelSpec(
            "kcfi-debug",
            "clang",
            "CONFIG_HIBERNATION=y\n" + KCFI_FRAGMENT,
            False,
            "kCFI, shrink_all_memory() not exported: the module must refuse to load",
        ),
        KernelSpec(
            "kcfi-debug-nohib",
            "clang",
            "CONFIG_HIBERNATION=n\n" + KCFI_FRAGMENT,
            True,
            "no CONFIG_HIBERNATION, so no shrink_all_memory(): the module must refuse to load",
        ),
        KernelSpec(
            "board-nohib",
            "gcc",
            BOARD_FRAGMENT,
            False,
            "no CONFIG_HIBERNATION, built to boot a board's Debian root with systemd (tests/vm.py's Board):"
            " the package must boot with no failed unit while the module refuses to load",
        ),
        KernelSpec(
            "upstream-6.1",
            "gcc",
            SERIES_FRAGMENT,
            False,
            "the upstream series (kmod/patches/upstream/) applied, its driver built in the tree as a module"
            " (CONFIG_SHRINKMEM=m): the module suite runs on the in-tree driver",
            series=True,
            keep_modules=("drivers/misc/shrinkmem.ko",),
        ),
    )
}


def series_patches() -> List[Path]:
    """The patches of the upstream series in the order they apply (the cover letter is not one)."""
    return sorted(path for path in SERIES_DIR.glob("*.patch") if not path.name.startswith("0000"))


def parse_fragment(text: str) -> Dict[str, str]:
    wanted: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        match = re.fullmatch(r"(CONFIG_\w+)=(.*)", line) or re.fullmatch(r"# (CONFIG_\w+) is not set", line)
        if match:
            wanted[match.group(1)] = match.group(2) if match.lastindex == 2 else "n"
    return wanted


def parse_config(text: str) -> Dict[str, str]:
    """A .config as CONFIG_X -> value, with "n" for options that are not set."""
    values: Dict[str, str] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(CONFIG_\w+)=(.*)", line)
        if match:
            values[match.group(1)] = match.group(2)
            continue
        match = re.fullmatch(r"# (CONFIG_\w+) is not set", line)
        if match:
            values[match.group(1)] = "n"
    return values


# ---------------------------------------------------------------- inputs and keys


def virtme_options() -> str:
    """The options virtme-ng needs in a guest kernel (its arch-specific and generic lists, not its optional extras)."""
    tool = shutil.which("virtme-configkernel") or str(REPO / ".venv" / "bin" / "virtme-configkernel")
    result = subprocess.run([tool, "--dry-run", "--arch", "x86_64"], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("##: Arch-specific options")), None)
    if start is None:
        raise KernelBuildError("virtme-configkernel --dry-run printed no arch-specific section")
    return "\n".join(lines[start:]) + "\n"


def source_version() -> str:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", SOURCE_PACKAGE], capture_output=True, text=True)
    if result.returncode != 0 or not SOURCE_TARBALL.exists():
        raise KernelBuildError(f"{SOURCE_TARBALL}: missing; run scripts/setup.sh (it installs {SOURCE_PACKAGE})")
    return result.stdout.strip()


def compiler_version(compiler: str) -> str:
    tool = "clang-16" if compiler == "clang" else "gcc"
    if shutil.which(tool) is None:
        raise KernelBuildError(f"{tool} is not installed: run scripts/setup.sh")
    return subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def spec_key(spec: KernelSpec) -> str:
    digest = hashlib.sha256()
    for part in (
        BUILDER_VERSION,
        source_version(),
        compiler_version(spec.compiler),
        " ".join(spec.make_vars),
        _patch_input(spec),
        virtme_options(),
        BASE_FRAGMENT,
        spec.fragment,
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _patch_input(spec: KernelSpec) -> str:
    """What the key takes of the patches: the export patch's text, or each series patch's name and bytes."""
    if spec.series:
        return "series\0" + "\0".join(f"{path.name}\0{path.read_text()}" for path in series_patches())
    return EXPORT_PATCH.read_text() if spec.export_patch else "no patch"


@dataclass(frozen=True)
class TestKernel:
    spec: KernelSpec
    dir: Path

    @property
    def image(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def build_dir(self) -> Path:
        """The tree to build external modules against (KDIR)."""
        return self.dir / "build"

    @property
    def make_vars(self) -> List[str]:
        return self.spec.make_vars

    @property
    def module_index(self) -> List[Path]:
        """modules.builtin and the others that a guest's /lib/modules/<release>/ needs (MODULE_INDEX_FILES)."""
        return [self.dir / "modules" / name for name in MODULE_INDEX_FILES]

    def kept_module(self, name: str) -> Path:
        """A module of keep_modules (by its file name, e.g. "shrinkmem.ko") as the cache keeps it."""
        if name not in {Path(path).name for path in self.spec.keep_modules}:
            raise KeyError(f"{self.spec.name} keeps no module {name!r} (keeps {list(self.spec.keep_modules)})")
        return self.dir / "modules" / name

    @property
    def info(self) -> Dict[str, object]:
        data: Dict[str, object] = json.loads((self.dir / "build-info.json").read_text())
        return data

    @property
    def config(self) -> Dict[str, str]:
        return parse_config((self.build_dir / ".config").read_text())

    @property
    def release(self) -> str:
        return str(self.info["release"])


def entry_dir(spec: KernelSpec) -> Path:
    return cache_root() / f"{spec.name}-{spec_key(spec)}"


def cached(name: str) -> Optional[TestKernel]:
    spec = SPECS[name]
    directory = entry_dir(spec)
    if (directory / "build-info.json").exists():
        return TestKernel(spec, directory)
    return None


# ---------------------------------------------------------------- building


class _Lock:
    """One kernel build at a time on this machine (an flock on the cache)."""

    def __enter__(self) -> _Lock:
        cache_root().mkdir(parents=True, exist_ok=True)
        self._file = open(cache_root() / ".lock", "w")
        fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def _run(argv: Sequence[str], cwd: Path, log: Path) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        result = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        raise KernelBuildError(f"{' '.join(argv)} failed in {cwd} (exit {result.returncode}):\n" + "\n".join(tail))


def _make(spec: KernelSpec, tree: Path, log: Path, *targets: str) -> None:
    _run(["nice", "-n", str(NICE), "make", f"-j{JOBS}", *spec.make_vars, *targets], tree, log)


def _tree(spec: KernelSpec) -> Path:
    """The shared source and object tree of a compiler (a tree of its own for the series), extracted once."""
    tree = cache_root() / "trees" / (f"{spec.compiler}-{source_version()}" + ("-series" if spec.series else ""))
    stamp = tree / ".shrinkd-extracted"
    if not stamp.exists():
        if tree.exists():
            shutil.rmtree(tree)
        tree.parent.mkdir(parents=True, exist_ok=True)
        staging = tree.parent / f".extract-{tree.name}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        # tar(1) is several times faster than tarfile on a 1 GB tree.
        subprocess.run(["tar", "-xJf", str(SOURCE_TARBALL), "-C", str(staging)], check=True)
        (staging / "linux-source-6.1").rename(tree)
        staging.rmdir()
        stamp.touch()
    return tree


def _set_patch(tree: Path, applied: bool, log: Path) -> None:
    """Apply or revert the export patch in the shared tree (only mm/vmscan.c changes)."""
    vmscan = (tree / "mm" / "vmscan.c").read_text()
    has = "EXPORT_SYMBOL_GPL(shrink_all_memory);" in vmscan
    if has == applied:
        return
    argv = ["patch", "-p1", "--no-backup-if-mismatch", "-i", str(EXPORT_PATCH)]
    _run(argv if applied else [*argv[:2], "-R", *argv[2:]], tree, log)


_APPLIED = ".shrinkd-series"


def _set_series(tree: Path, log: Path) -> None:
    """Make the series tree carry the series as it is now: revert what was applied (the copies kept
    in the tree, newest first) when it differs, then apply each patch in order and keep a copy."""
    applied = tree / _APPLIED
    wanted = series_patches()
    if not wanted:
        raise KernelBuildError(f"{SERIES_DIR}: no patches")
    kept = sorted(applied.glob("*.patch")) if applied.exists() else []
    if [(p.name, p.read_bytes()) for p in kept] == [(p.name, p.read_bytes()) for p in wanted]:
        return
    for patch in reversed(kept):
        _run(["patch", "-p1", "-R", "--no-backup-if-mismatch", "-i", str(patch)], tree, log)
        patch.unlink()
    applied.mkdir(exist_ok=True)
    for patch in wanted:
        argv = ["patch", "-p1", "--forward", "--no-backup-if-mismatch", "-i", str(patch)]
        _run([*argv, "--dry-run"], tree, log)  # a patch that does not apply leaves no hunk behind
        _run(argv, tree, log)
        shutil.copy2(patch, applied / patch.name)


def _configure(spec: KernelSpec, tree: Path, log: Path) -> str:
    _make(spec, tree, log, "allnoconfig")
    config = tree / ".config"
    local = f'CONFIG_LOCALVERSION="-shrinkd-{spec.name}"\nCONFIG_LOCALVERSION_AUTO=n\n'
    with open(config, "a") as f:
        f.write(virtme_options() + BASE_FRAGMENT + spec.fragment + local)
    _make(spec, tree, log, "olddefconfig")
    resolved = parse_config(config.read_text())
    wanted = {key: value for key, value in parse_fragment(virtme_options()).items() if key not in VIRTME_LEFT_OUT}
    wanted.update(spec.wanted())
    lost = {key: value for key, value in wanted.items() if resolved.get(key, "n") != value}
    if lost:
        raise KernelBuildError(
            f"{spec.name}: the configuration did not keep "
            + ", ".join(f"{k}={v} (got {resolved.get(k, 'n')})" for k, v in sorted(lost.items()))
        )
    return config.read_text()


# What an out-of-tree module build needs from a built tree (as Debian's linux-headers has it).
_HEADER_FILES = ["Makefile", ".config", "Module.symvers", "System.map", "tools/objtool/objtool"]
# What a guest's /lib/modules/<release>/ needs besides its modules, so that modprobe finds the
# built-in ones (a board's runner loads 9p with modprobe) and depmod indexes the rest.
MODULE_INDEX_FILES = ["modules.builtin", "modules.builtin.modinfo", "modules.order"]
_HEADER_DIRS = ["include", "scripts", "arch/x86/include"]
_SKIP = shutil.ignore_patterns("*.o", ".*.cmd", "*.a", ".tmp_*", "*.d")


def _export_build_dir(tree: Path, dest: Path) -> None:
    for name in _HEADER_FILES:
        source = tree / name
        if source.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for name in _HEADER_DIRS:
        shutil.copytree(tree / name, dest / name, ignore=_SKIP, symlinks=True)
    for makefile in (tree / "arch" / "x86").glob("Makefile*"):
        shutil.copy2(makefile, dest / "arch" / "x86" / makefile.name)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _build(spec: KernelSpec) -> TestKernel:
    final = entry_dir(spec)
    tree = _tree(spec)
    staging = final.parent / f".staging-{final.name}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    log = staging / "build.log"
    started = time.monotonic()
    if spec.series:
        _set_series(tree, log)
    else:
        _set_patch(tree, spec.export_patch, log)
    config = _configure(spec, tree, log)
    configured = time.monotonic()
    cpu_before = _children_cpu()
    _make(spec, tree, log, "bzImage", "modules")
    built = time.monotonic()
    cpu = _children_cpu() - cpu_before
    release = subprocess.run(
        ["make", "-s", *spec.make_vars, "kernelrelease"], cwd=tree, capture_output=True, text=True, check=True
    ).stdout.strip()
    shutil.copy2(tree / "arch" / "x86" / "boot" / "bzImage", staging / "vmlinuz")
    _export_build_dir(tree, staging / "build")
    (staging / "modules").mkdir()
    for name in MODULE_INDEX_FILES:
        shutil.copy2(tree / name, staging / "modules" / name)
    for path in spec.keep_modules:
        shutil.copy2(tree / path, staging / "modules" / Path(path).name)
    info = {
        "name": spec.name,
        "purpose": spec.purpose,
        "release": release,
        "compiler": compiler_version(spec.compiler),
        "make_vars": spec.make_vars,
        "export_patch": spec.export_patch,
        "series": [path.name for path in series_patches()] if spec.series else [],
        "source": f"{SOURCE_PACKAGE} {source_version()}",
        "configure_seconds": round(configured - started, 1),
        "build_seconds": round(built - configured, 1),
        # CPU time of the build (compilers included): what it costs on idle cores, whatever
        # else ran on the machine meanwhile; about twice the wall time of an idle 2-core build.
        "build_cpu_seconds": round(cpu, 1),
        "options": len(parse_config(config)),
        "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (staging / "build-info.json").write_text(json.dumps(info, indent=1) + "\n")
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    return TestKernel(spec, final)


def ensure(name: str) -> TestKernel:
    """The named test kernel, built now if it is not in the cache."""
    if name not in SPECS:
        raise KeyError(f"no test kernel named {name!r} (have {sorted(SPECS)})")
    found = cached(name)
    if found is not None:
        return found
    with _Lock():
        found = cached(name)  # another process may have built it meanwhile
        if found is not None:
            return found
        return _build(SPECS[name])


def available() -> Optional[str]:
    """None when test kernels can be built here, else why not."""
    try:
        source_version()
        for compiler in ("gcc", "clang"):
            compiler_version(compiler)
    except KernelBuildError as error:
        return str(error)
    for tool in ("flex", "bison", "bc", "ld.lld-16"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: run scripts/setup.sh"
    return None


def _du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _entries() -> Iterator[Tuple[str, Optional[TestKernel]]]:
    for name in SPECS:
        yield name, cached(name)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Build or list the shrinkd test kernels.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the named kernels (default: all) that are not cached")
    build.add_argument("names", nargs="*", metavar="NAME", help=", ".join(SPECS))
    sub.add_parser("list", help="cached kernels with their build times and the cache's size")
    args = parser.parse_args(argv)
    if args.command == "build":
        for name in args.names or list(SPECS):
            started = time.monotonic()
            kernel = ensure(name)
            info = kernel.info
            print(
                f"{name}: {kernel.dir} (configure {info['configure_seconds']} s, build {info['build_seconds']} s;"
                f" {time.monotonic() - started:.0f} s now)",
                flush=True,
            )
        return 0
    for name, entry in _entries():
        if entry is None:
            print(f"{name}: not built")
        else:
            info = entry.info
            print(
                f"{name}: {info['release']}, configure {info['configure_seconds']} s, build {info['build_seconds']} s"
                f" ({info.get('build_cpu_seconds', '?')} s of CPU),"
                f" {_du(entry.dir) >> 20} MB"
            )
    trees = cache_root() / "trees"
    if trees.exists():
        for tree in sorted(trees.iterdir()):
            print(f"tree {tree.name}: {_du(tree) >> 20} MB")
    print(f"cache {cache_root()}: {_du(cache_root()) >> 20} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
