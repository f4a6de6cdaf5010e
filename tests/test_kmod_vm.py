"""The shrinkmem kernel module (kmod/): built and checked on the host, then run in booted kernels.

Host checks (no VM): a W=1 build against each kernel's headers is warning-free;
checkpatch --strict and kernel-doc are clean; the export path builds and calls
shrink_all_memory() directly; the refusal checks are compiled in exactly where the
kernel's configuration needs them; the export patch applies to the 6.1 source;
`make -C kmod` finds a kernel tree by itself; DKMS builds the module from dkms.conf.

In Debian's 6.1 under QEMU (and, with SHRINKD_TEST_KERNELS=1, in the kernel that
tests/testkernels.py builds from Debian's 6.1 source with clang-16, kCFI, lockdep,
KASAN and the export patch; one boot each) tests/kmod/guest_checks.py loads the module
and measures; the tests below judge what it recorded: the device node, parameters
validated at load and in sysfs, reclaim of page cache read from ext4 on a virtio disk
(text and ioctl), the bad-input table, EFAULT paths, unprivileged callers and
descriptors handed between them, read() snapshots, parallel writers traced with kprobe
events, a seeded fuzz, requests stopped by SIGKILL and the freezer and left running by a
handled SIGTERM or SIGCHLD, waits restarted under SA_RESTART, read-only descriptors refused,
rmmod while open, reload, a module of another ABI version, and a clean kernel log.

With SHRINKD_TEST_KERNELS=1 the same guest checks also run on the driver of the upstream
series (kmod/patches/upstream/): the test kernel upstream-6.1 is Debian's 6.1 source with
the whole series applied and CONFIG_SHRINKMEM=m, and the guest loads the shrinkmem.ko
built in that tree. Every check applies to it but two, which IN_TREE_DIFFERENCES names
with their reason (no line at load, no module version); the tests check what the
in-tree driver does there instead.

With SHRINKD_TEST_KERNELS=1, two more test kernels must refuse the module (without
CONFIG_HIBERNATION; kCFI without the export): insmod fails with the module's one-line
reason, nothing is registered, and the kernel log has no warning. The test kernels are
not part of the default run (nor of CI's): their cold build costs about 25 CPU minutes
here (and upstream-6.1 14 more), and with the KASAN guest the suite no longer fits CI's 90 minutes on two cores
(kmod/README.md, "Tests").
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

import pytest

from shrinkd import shrinkmem
from tests import testkernels, vm

REPO = vm.REPO
KMOD = REPO / "kmod"
SERIES = ["6.1", "6.12"]
# Kernels built by tests/testkernels.py where the whole suite runs, and those that must refuse the
# module: with SHRINKD_TEST_KERNELS=1 only (the module docstring says why).
TEST_KERNELS = os.environ.get("SHRINKD_TEST_KERNELS") == "1"
SUITE_KERNELS = ["kcfi-debug-export"] if TEST_KERNELS else []
# Kernels built from the upstream series, where the suite runs on the in-tree driver (the
# shrinkmem.ko built in the kernel's own tree) instead of a build of kmod/.
ALL_IN_TREE_KERNELS = ["upstream-6.1"]
IN_TREE_KERNELS = ALL_IN_TREE_KERNELS if TEST_KERNELS else []
# What the out-of-tree module does and the in-tree driver leaves out on purpose (kmod/README.md,
# "Upstream patch series"): the checks of these cannot apply to the in-tree driver, and the tests
# that make them check the in-tree driver's own behaviour there instead.
IN_TREE_DIFFERENCES = {
    "ready line": "the in-tree driver prints no line at load (a driver that works says nothing):"
    " its load leaves no line in the kernel log, where the module says 'shrinkmem: ready: ...'",
    "module version": "the in-tree driver has no MODULE_VERSION (it goes with its kernel's version):"
    " modinfo says 'intree: Y' and has no version to compare with dkms.conf's",
}
# The guests booted here: Debian's 6.1 (the kprobe path) and the test kernel (the direct call,
# lockdep and KASAN). Debian's 6.12 module runs the same guest checks in the x86_64-6.12 board
# session (tests/boards.py: DKMS-built, as a board gets it), so it is not booted twice.
TARGETS = ["6.1", *SUITE_KERNELS, *IN_TREE_KERNELS]
ALL_REFUSALS = {
    "kcfi-debug-nohib": "refusing to load: this kernel is built without CONFIG_HIBERNATION",
    "kcfi-debug": "refusing to load: kCFI would reject an indirect call to shrink_all_memory()",
}
REFUSALS = ALL_REFUSALS if TEST_KERNELS else {}
LINUX_SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
PAGE_KB = 4
# A chunk bringing back less than 1/SHORT_DIVISOR of its ask ends a request (kmod/shrinkmem.c).
SHORT_DIVISOR = int(re.search(r"^#define SHORT_DIVISOR (\d+)$", (KMOD / "shrinkmem.c").read_text(), re.M)[1])  # type: ignore[index]
MB_PAGES = 1024 // PAGE_KB

# Kernel log lines that mean something went wrong in the kernel.
BAD_KERNEL_LOG = re.compile(
    r"WARNING:|BUG:|\bOops\b|general protection fault|Call Trace:|Kernel panic|lockdep is turned off"
    r"|DEBUG_LOCKS_WARN_ON|possible circular locking"
    r"|possible recursive locking|sleeping function called from invalid context|scheduling while atomic"
    r"|blocked for more than \d+ seconds|detected stall|soft lockup|hard LOCKUP|UBSAN:|KASAN:|refcount_t:"
    r"|list_(add|del) corruption|[Kk]probe.*(fail|error|invalid)|shrinkmem: (refusing|cannot)"
    r"|CFI failure|Freezing.*(failed|aborted)|refusing to freeze|kernel BUG"
)

# What the kernel itself prints, under the module's name, when it loads an out-of-tree or unsigned module.
KERNEL_MODULE_NOTICE = re.compile(r"loading out-of-tree module taints kernel|module verification failed")

# The documented result of each bad text write and ioctl (kmod/README.md, "Errors").
EXPECTED_WRITE_ERRNO = {
    "empty": "EINVAL",
    "abc": "EINVAL",
    "minus_one": "EINVAL",
    "zero": "EINVAL",
    "zero_newline": "EINVAL",
    "exponent": "EINVAL",
    "trailing_junk": "EINVAL",
    "text_4k": "EINVAL",
    "digits_4k": "EINVAL",
    "binary_junk": "EINVAL",
    "nul_inside": "EINVAL",
    "digits_30": "ERANGE",
    "over_max_mb": "ERANGE",
    "leading_space": "EINVAL",
    "two_newlines": "EINVAL",
    "hex": "EINVAL",
    "plus_sign": "EINVAL",
    "leading_zero": "EINVAL",
    "zero_then_newline_only": "EINVAL",
    "trailing_space": "EINVAL",
    "crlf": "EINVAL",
    "tab": "EINVAL",
    "newline_only": "EINVAL",
}
EXPECTED_IOCTL_ERRNO = {
    "zero_pages": "EINVAL",
    "flags_set": "EINVAL",
    "result_set": "EINVAL",
    "over_max": "ERANGE",
    "u64_max": "ERANGE",
    "bad_pointer": "EFAULT",
    "info_bad_pointer": "EFAULT",
    "unknown_nr": "ENOTTY",
    "wrong_size": "ENOTTY",
    "foreign_cmd": "ENOTTY",
}

needs_kernels = pytest.mark.skipif(vm.available() is not None, reason=str(vm.available()))

BUILD_OUTPUTS = shutil.ignore_patterns(
    "*.ko", "*.o", "*.mod", "*.mod.c", ".*.cmd", "Module.symvers", "modules.order", ".tmp_versions"
)


# ---------------------------------------------------------------- building


@dataclass(frozen=True)
class Build:
    release: str
    kdir: Path
    dir: Path
    returncode: int
    output: str

    @property
    def ko(self) -> Path:
        return self.dir / "shrinkmem.ko"


def copy_kmod(dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(KMOD, dest, ignore=BUILD_OUTPUTS)
    return dest


def make(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(directory), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


def build_in(dest: Path, kdir: Path, release: str, *make_vars: str) -> Build:
    directory = copy_kmod(dest)
    result = make(directory, f"KDIR={kdir}", "W=1", *make_vars)
    return Build(release, kdir, directory, result.returncode, result.stdout + result.stderr)


# ---------------------------------------------------------------- targets: Debian's kernels and ours


@functools.cache
def built_kernel(name: str) -> testkernels.TestKernel:
    """A kernel of tests/testkernels.py, built now when it is not cached (a cold run builds each once)."""
    reason = testkernels.available()
    if reason is not None:
        pytest.fail(f"cannot build test kernel {name}: {reason}")
    return testkernels.ensure(name)


def kernel_of(target: str) -> Union[str, Path]:
    """What tests/vm.py boots: a Debian series, or the image of a test kernel."""
    return target if target in SERIES else built_kernel(target).image


def kdir_of(target: str) -> Path:
    return vm.headers_dir(target) if target in SERIES else built_kernel(target).build_dir


def release_of(target: str) -> str:
    return vm.kernel_release(target) if target in SERIES else built_kernel(target).release


def make_vars_of(target: str) -> List[str]:
    """Extra make variables a module build for the target needs (clang kernels: LLVM=-16)."""
    return [] if target in SERIES else [v for v in built_kernel(target).make_vars if not v.startswith("ARCH=")]


@functools.cache
def build(target: str) -> Build:
    """The module built with W=1 against a target's headers, in a copy of kmod/ of its own; for a
    kernel built from the upstream series, the in-tree driver that kernel's build made."""
    release = release_of(target)
    if target in ALL_IN_TREE_KERNELS:
        # Copied under .vm/: a guest sees the host's files, but not /var/cache, where the kernel's cache is.
        kernel = built_kernel(target)
        directory = vm.VM_ROOT / f"kmod-{release}"
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        shutil.copy2(kernel.kept_module("shrinkmem.ko"), directory / "shrinkmem.ko")
        return Build(release, kernel.build_dir, directory, 0, (kernel.dir / "build.log").read_text(errors="replace"))
    return build_in(vm.VM_ROOT / f"kmod-{release}", kdir_of(target), release, *make_vars_of(target))


def compiler_diagnostics(output: str) -> List[str]:
    return [line for line in output.splitlines() if re.search(r"\b(warning|error):", line, re.IGNORECASE)]


def kernel_config(kdir: Path) -> Dict[str, str]:
    config: Dict[str, str] = {}
    for line in (kdir / ".config").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("CONFIG_"):
            config[key] = value
    return config


def exports_shrink_all_memory(kdir: Path) -> bool:
    for line in (kdir / "Module.symvers").read_text().splitlines():
        fields = line.split("\t")
        if len(fields) > 1 and fields[1] == "shrink_all_memory":
            return True
    return False


def undefined_symbols(ko: Path) -> List[str]:
    out = subprocess.run(["nm", "-u", str(ko)], capture_output=True, text=True, check=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


def export_kdir(series: str) -> Path:
    """A view of a series' headers whose Module.symvers also lists shrink_all_memory (as a patched kernel's would)."""
    source = vm.headers_dir(series).resolve()
    view = vm.VM_ROOT / f"kdir-export-{vm.kernel_release(series)}"
    if view.exists():
        shutil.rmtree(view)
    view.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name != "Module.symvers":
            (view / entry.name).symlink_to(entry.resolve())
    symvers = (source / "Module.symvers").read_text()
    (view / "Module.symvers").write_text(symvers + "0x00000000\tshrink_all_memory\tvmlinux\tEXPORT_SYMBOL_GPL\t\n")
    return view


@functools.cache
def linux_source() -> Path:
    """The few files of Debian's linux-source-6.1 the checks need, extracted once under .vm/."""
    root = vm.VM_ROOT / "linux-source-6.1"
    members = [
        "scripts/checkpatch.pl",
        "scripts/spelling.txt",
        "scripts/const_structs.checkpatch",
        "scripts/kernel-doc",
        "mm/vmscan.c",
    ]
    return extract_source(root, members)


def extract_source(root: Path, members: List[str]) -> Path:
    """`members` (paths inside the tree) of LINUX_SOURCE under `root`, extracted again only when
    the list changes (a stamp file names it). Under a lock: the two pytest-xdist workers may ask
    at once, and one must not remove the tree the other is reading."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.with_name(root.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = root / ".extracted"
        if not stamp.exists() or stamp.read_text() != "\n".join(members):
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
            with tarfile.open(LINUX_SOURCE) as tar:
                for member in tar:
                    name = member.name.split("/", 1)[-1]
                    if name in members:
                        member.name = name
                        if hasattr(tarfile, "data_filter"):
                            tar.extract(member, root, filter="data")
                        else:
                            tar.extract(member, root)
            missing = [m for m in members if not (root / m).exists()]
            assert not missing, f"{LINUX_SOURCE} lacks {missing}"
            stamp.write_text("\n".join(members))
    return root


def module_version() -> str:
    match = re.search(r'#define SHRINKMEM_VERSION "([^"]+)"', (KMOD / "shrinkmem.c").read_text())
    assert match, "kmod/shrinkmem.c: no SHRINKMEM_VERSION"
    return match.group(1)


def header_abi_version() -> int:
    match = re.search(r"#define SHRINKMEM_ABI_VERSION (\d+)", (KMOD / "uapi" / "shrinkmem.h").read_text())
    assert match, "kmod/uapi/shrinkmem.h: no SHRINKMEM_ABI_VERSION"
    return int(match.group(1))


def dkms_conf() -> Dict[str, str]:
    values: Dict[str, str] = {}
    for line in (KMOD / "dkms.conf").read_text().splitlines():
        match = re.match(r'^([A-Z_]+(?:\[\d+\])?)="?(.*?)"?$', line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


# ---------------------------------------------------------------- host checks


def test_kernel_log_filter_tells_reports_from_noise() -> None:
    reports = [
        "[   12.3] WARNING: CPU: 1 PID: 245 at mm/vmscan.c:7012 shrink_node+0x1/0x2",
        "[   12.3] BUG: sleeping function called from invalid context at mm/vmscan.c:100",
        "[   12.3] Oops: 0000 [#1] PREEMPT SMP NOPTI",
        "[   12.3] WARNING: possible circular locking dependency detected",
        "[  130.1] INFO: task python:245 blocked for more than 120 seconds.",
        "[   12.3] rcu: INFO: rcu_preempt self-detected stall on CPU",
        "[   12.3] Kprobe: failed to register probe",
        "[   12.3] shrinkmem: refusing to load: the CPU enforces IBT",
        "[   12.3] CFI failure at shrinkmem_reclaim+0x1c/0x90 [shrinkmem] (target: 0xffffffff8128f2a0; expected type: 0x1fc9a2b2)",
        "[   12.3] Freezing user space processes failed after 20.004 seconds (1 tasks refusing to freeze, wq_busy=0):",
        "[   12.3] BUG: KASAN: slab-out-of-bounds in shrinkmem_write+0x1/0x2",
        "[   12.3] INFO: lockdep is turned off.",
        "[   12.3] DEBUG_LOCKS_WARN_ON(1)",
    ]
    noise = [
        "[    0.000000] calibrate_delay_direct() failed to get a good estimate for loops_per_jiffy.",
        "[   43.279858] shrinkmem: loading out-of-tree module taints kernel.",
        "[   43.282168] shrinkmem: module verification failed: signature and/or required key missing - tainting kernel",
        "[   86.226112] hrtimer: interrupt took 13991860 ns",
        "[  129.547000] shrinkmem: requested 600 MB, reclaimed 154545 pages in 11092383 us",
        "[   31.442638] virtme-ng-init: udev is done",
        "[   40.1] Freezing user space processes ... (elapsed 0.004 seconds) done.",
        "[   40.1] PM: suspend debug: Waiting for 5 second(s).",
        "[   40.1] shrinkmem: max_mb=0: not a whole number of megabytes from 1 to 2962",
        "[   40.1] shrinkmem: requested 2400 MB, reclaimed 3584 pages in 1510112 us (interrupted)",
        "[    0.000000] rcu: \tRCU lockdep checking is enabled.",
        "[    0.000000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
    ]
    assert [line for line in reports if not BAD_KERNEL_LOG.search(line)] == []
    assert [line for line in noise if BAD_KERNEL_LOG.search(line)] == []


def guest_checks_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("guest_checks", REPO / "tests" / "kmod" / "guest_checks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("ended", [[False], [True, False], [True, True, False], [True, True, True]])
def test_a_part_way_check_starts_again_only_while_its_request_ended_first(ended: List[bool]) -> None:
    """until_part_way: a request that ended on its own before its signal is started again, with a
    fresh hog each time (the first too), up to PART_WAY_ATTEMPTS times in all; the early endings are kept
    for the judges."""
    checks = guest_checks_module()
    started: List[str] = []
    hogs: List[int] = []
    outcomes = iter(ended)

    def check(proc: Any) -> Dict[str, Any]:
        started.append(proc)
        part_way: Dict[str, Any] = {"swapped_pages": 1}
        if next(outcomes):
            part_way["ended"] = True
        return {"part_way": part_way, "summary": {"last_flags": "4"}, "log": [proc]}

    out = checks.until_part_way("first", lambda: f"again{len(started)}", check, lambda: hogs.append(1))
    attempts = min(len(ended), checks.PART_WAY_ATTEMPTS)
    assert started == ["first"] + [f"again{n}" for n in range(1, attempts)]
    assert len(hogs) == attempts  # each attempt over a hog of its own
    assert [e["log"] for e in out["ended_first"]] == [[name] for name in started[:-1]]
    assert out["part_way"].get("ended", False) == (ended[attempts - 1])


ALL_BUILDS = SERIES + SUITE_KERNELS + sorted(REFUSALS)
EXPORTING = {"kcfi-debug-export"}


@needs_kernels
@pytest.mark.parametrize("series", ALL_BUILDS)
def test_w1_build_is_warning_free(series: str) -> None:
    result = build(series)
    assert result.returncode == 0, result.output
    assert result.ko.exists()
    assert compiler_diagnostics(result.output) == [], result.output


@needs_kernels
@pytest.mark.parametrize("series", ALL_BUILDS)
def test_build_resolves_symbol_as_the_headers_allow(series: str) -> None:
    """Debian's kernels do not export shrink_all_memory(): the module must use the kprobe; the patched ones do."""
    result = build(series)
    assert result.returncode == 0, result.output
    assert exports_shrink_all_memory(result.kdir) == (series in EXPORTING)
    symbols = undefined_symbols(result.ko)
    if series in REFUSALS:
        # The module refuses this kernel whatever it finds: the compiler sees the refusal's
        # IS_ENABLED() test as constant and drops the call path after it.
        assert "shrink_all_memory" not in symbols
    elif exports_shrink_all_memory(result.kdir):
        assert "shrink_all_memory" in symbols and "register_kprobe" not in symbols
    else:
        assert "register_kprobe" in symbols and "shrink_all_memory" not in symbols


@needs_kernels
@pytest.mark.parametrize("series", ALL_BUILDS)
def test_refusals_compiled_in_where_the_config_needs_them(series: str) -> None:
    """The IBT and kCFI refusals exist only in kprobe builds for such kernels; the no-hibernation one only without it."""
    result = build(series)
    assert result.returncode == 0, result.output
    config = kernel_config(result.kdir)
    binary = result.ko.read_bytes()
    kprobe_path = not exports_shrink_all_memory(result.kdir)
    ibt = config.get("CONFIG_X86_KERNEL_IBT") == "y"
    cfi = config.get("CONFIG_CFI_CLANG") == "y" or config.get("CONFIG_CFI") == "y"
    hibernation = config.get("CONFIG_HIBERNATION") == "y"
    # The checks run in order and the compiler drops what follows one that always refuses
    # (its IS_ENABLED() test is a constant): the first refusal that applies is in the binary.
    assert (b"built without CONFIG_HIBERNATION" in binary) == (not hibernation)
    if hibernation:
        assert (b"kCFI would reject" in binary) == (cfi and kprobe_path)
        assert (b"the CPU enforces IBT" in binary) == (ibt and kprobe_path and not cfi)
    # x86_64 is a proven architecture: the unproven-architecture refusal is compiled out.
    assert b"is proven only on x86_64, arm64 and arm" not in binary
    if series == "6.12":
        assert ibt, "bookworm-backports' 6.12 is an IBT build: the IBT check must be exercised by this build"
    if series.startswith("kcfi-"):
        assert cfi, f"{series} must be a kCFI kernel"
    if series == "kcfi-debug-nohib":
        assert not hibernation


@needs_kernels
@pytest.mark.parametrize("series", SERIES)
def test_export_path_builds_a_direct_call(series: str) -> None:
    """Against headers that export shrink_all_memory() the module links to it and uses no kprobe."""
    release = vm.kernel_release(series)
    result = build_in(vm.VM_ROOT / f"kmod-export-{release}", export_kdir(series), release)
    assert result.returncode == 0, result.output
    assert compiler_diagnostics(result.output) == [], result.output
    symbols = undefined_symbols(result.ko)
    assert "shrink_all_memory" in symbols
    assert "register_kprobe" not in symbols
    assert b"the CPU enforces IBT" not in result.ko.read_bytes()


@needs_kernels
@pytest.mark.parametrize("name", ["shrinkmem.c", "uapi/shrinkmem.h"])
def test_checkpatch_strict_is_clean(name: str) -> None:
    checkpatch = linux_source() / "scripts" / "checkpatch.pl"
    result = subprocess.run(
        ["perl", str(checkpatch), "--no-tree", "--strict", "--show-types", "-f", str(KMOD / name)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "total: 0 errors, 0 warnings, 0 checks" in result.stdout, result.stdout


@needs_kernels
def test_checkpatch_catches_a_style_error() -> None:
    """The checkpatch run above can fail: a copy of the module with a style error is reported."""
    bad = vm.VM_ROOT / "checkpatch-bad.c"
    bad.write_text((KMOD / "shrinkmem.c").read_text().replace("\tint ret;\n", "\tint ret ;\n", 1))
    result = subprocess.run(
        ["perl", str(linux_source() / "scripts" / "checkpatch.pl"), "--no-tree", "--strict", "-f", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "space prohibited before semicolon" in result.stdout


@needs_kernels
@pytest.mark.parametrize("name", ["shrinkmem.c", "uapi/shrinkmem.h"])
def test_kernel_doc_is_clean(name: str) -> None:
    result = subprocess.run(
        ["perl", str(linux_source() / "scripts" / "kernel-doc"), "-none", "-Werror", str(KMOD / name)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr


@needs_kernels
def test_export_patch_applies_to_linux_6_1() -> None:
    tree = vm.VM_ROOT / "patch-check"
    if tree.exists():
        shutil.rmtree(tree)
    (tree / "mm").mkdir(parents=True)
    shutil.copy(linux_source() / "mm" / "vmscan.c", tree / "mm" / "vmscan.c")
    patch = KMOD / "patches" / "export-shrink_all_memory.patch"
    result = subprocess.run(
        ["patch", "-p1", "--no-backup-if-mismatch", "-i", str(patch)], cwd=tree, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    patched = (tree / "mm" / "vmscan.c").read_text()
    function = re.search(r"\nunsigned long shrink_all_memory\(.*?\n}\n([^\n]*)\n", patched, re.S)
    assert function and function.group(1) == "EXPORT_SYMBOL_GPL(shrink_all_memory);"


@needs_kernels
def test_make_without_kdir_finds_a_kernel_tree() -> None:
    directory = copy_kmod(vm.VM_ROOT / "kmod-default")
    running = os.uname().release
    own = Path("/lib/modules") / running / "build"
    result = make(directory)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert (directory / "shrinkmem.ko").exists()
    if (own / "Makefile").exists():
        assert f"-C {own} " in output, output
    else:
        assert f"no headers for the running kernel {running}" in output and "pass KDIR=DIR" in output, output


@needs_kernels
def test_make_with_a_wrong_kdir_says_what_to_do() -> None:
    directory = copy_kmod(vm.VM_ROOT / "kmod-default")
    result = make(directory, "KDIR=/nonexistent/kernel")
    assert result.returncode != 0
    assert "KDIR=/nonexistent/kernel is not a kernel build tree" in result.stderr, result.stderr


@needs_kernels
def test_make_honours_kernel_src_as_yocto_passes_it() -> None:
    """KERNEL_SRC (Yocto's module class) picks the tree, not the build host's kernel; KDIR still wins over it."""
    directory = copy_kmod(vm.VM_ROOT / "kmod-kernel-src")
    tree = vm.headers_dir("6.12")
    result = make(directory, f"KERNEL_SRC={tree}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"-C {tree} " in output, output
    modinfo = subprocess.run(
        ["modinfo", "-F", "vermagic", str(directory / "shrinkmem.ko")], capture_output=True, text=True
    )
    assert modinfo.stdout.split()[0] == vm.kernel_release("6.12")
    other = vm.headers_dir("6.1")
    both = make(directory, f"KERNEL_SRC={tree}", f"KDIR={other}", "clean")
    assert both.returncode == 0 and f"-C {other} " in both.stdout, both.stdout + both.stderr
    wrong = make(directory, "KERNEL_SRC=/nonexistent/kernel")
    assert wrong.returncode != 0
    assert "KERNEL_SRC=/nonexistent/kernel is not a kernel build tree" in wrong.stderr, wrong.stderr


@needs_kernels
@pytest.mark.parametrize("series", SERIES)
def test_modules_install_goes_under_install_mod_path(series: str) -> None:
    """`make modules_install INSTALL_MOD_PATH=DIR` puts the module under DIR/lib/modules/RELEASE, nowhere else."""
    directory = copy_kmod(vm.VM_ROOT / f"kmod-install-{series}")
    tree = vm.headers_dir(series)
    release = vm.kernel_release(series)
    staging = vm.VM_ROOT / f"install-root-{series}"
    if staging.exists():
        shutil.rmtree(staging)
    host_before = sorted(Path("/lib/modules", release).rglob("shrinkmem.ko*"))
    built = make(directory, f"KERNEL_SRC={tree}")
    assert built.returncode == 0, built.stdout + built.stderr
    result = make(directory, f"KERNEL_SRC={tree}", f"INSTALL_MOD_PATH={staging}", "modules_install")
    assert result.returncode == 0, result.stdout + result.stderr
    installed = sorted(p.relative_to(staging) for p in staging.rglob("shrinkmem.ko*"))
    assert len(installed) == 1, installed
    assert installed[0].parts[:3] == ("lib", "modules", release), installed
    assert sorted(Path("/lib/modules", release).rglob("shrinkmem.ko*")) == host_before


@needs_kernels
def test_kbuild_stops_outside_the_proven_architectures() -> None:
    """Real Kbuild, against Debian 6.1's headers, told the kernel is not x86_64 (CONFIG_X86_64 unset on the command
    line, as on powerpc64): the kprobe build stops with the module's message; the export path still builds."""
    directory = copy_kmod(vm.VM_ROOT / "kmod-unproven")
    refused = make(directory, f"KDIR={vm.headers_dir('6.1')}", "CONFIG_X86_64=")
    assert refused.returncode != 0
    assert (
        "shrinkmem: this kernel (x86) does not export shrink_all_memory(), and the kprobe path is proven only on"
        " x86_64, arm64 and arm" in refused.stderr
    ), refused.stderr
    assert not (directory / "shrinkmem.o").exists()
    allowed = make(directory, f"KDIR={export_kdir('6.1')}", "CONFIG_X86_64=")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "shrink_all_memory" in undefined_symbols(directory / "shrinkmem.ko")


def test_dkms_conf_matches_the_module() -> None:
    conf = dkms_conf()
    assert conf["PACKAGE_NAME"] == "shrinkmem"
    assert conf["BUILT_MODULE_NAME[0]"] == "shrinkmem"
    assert conf["PACKAGE_VERSION"] == module_version()
    assert "KDIR=${kernel_source_dir}" in conf["MAKE[0]"]


@needs_kernels
@pytest.mark.parametrize("series", SERIES)
def test_dkms_builds_the_module(series: str) -> None:
    """`dkms add` and `dkms build` from dkms.conf, in a private DKMS tree (nothing installed)."""
    if shutil.which("dkms") is None:
        pytest.fail("dkms is not installed: run scripts/setup.sh")
    release = vm.kernel_release(series)
    version = dkms_conf()["PACKAGE_VERSION"]
    root = vm.VM_ROOT / f"dkms-{release}"
    if root.exists():
        shutil.rmtree(root)
    copy_kmod(root / "src" / f"shrinkmem-{version}")
    (root / "tree").mkdir()
    trees = ["--sourcetree", str(root / "src"), "--dkmstree", str(root / "tree")]
    for command in (["add"], ["build", "-k", release]):
        result = subprocess.run(
            ["dkms", *command, "-m", "shrinkmem", "-v", version, *trees], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
    built = list((root / "tree" / "shrinkmem" / version / release).glob("*/module/shrinkmem.ko*"))
    assert built, f"no module under {root / 'tree'}"


# ---------------------------------------------------------------- in the kernels


@dataclass
class GuestRun:
    series: str
    release: str
    results: Dict[str, Any]
    log: str
    out_dir: Path
    vm_seconds: float

    def section(self, name: str) -> Dict[str, Any]:
        data = self.results.get(name)
        if data is None:
            pytest.fail(f"{self.series}: the guest never ran section {name!r}:\n{self.log[-4000:]}")
        if "error" in data:
            pytest.fail(f"{self.series}: section {name!r} raised in the guest:\n{data['error']}")
        result: Dict[str, Any] = data
        return result


def make_data_disk(run_dir: Path, cache_mb: int) -> Path:
    """An ext4 image holding one file of random data, to be read into the guest's page cache."""
    content = run_dir / "content"
    content.mkdir()
    with open(content / "cache.bin", "wb") as f:
        for _ in range(cache_mb):
            f.write(os.urandom(1 << 20))
    image = run_dir / "data.img"
    with open(image, "wb") as f:
        f.truncate((cache_mb + 128) << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(content), str(image)], check=True, capture_output=True)
    shutil.rmtree(content)
    return image


# The kill test: a request of KILL_REQUEST_MB has to swap out KILL_HOG_MB of anonymous
# memory to zram (about 20 s under emulation for 1000 MB); it is killed once an eighth of
# the hog went to swap, and so are the SIGTERM, SIGCHLD and freezer requests after it, each
# over a new hog (tests/kmod/guest_checks.py).
GUEST_MEMORY = "3G"
KILL_HOG_MB = 2000
KILL_REQUEST_MB = 2400

GUEST_SCRIPT = """\
$PY tests/kmod/guest_checks.py --ko {ko} --other-abi-ko {other_ko} --out "$OUT" --data-disk /dev/vda \
    --hog-mb {hog_mb} --kill-mb {kill_mb} {extra} \
    > "$OUT/guest-log.txt" 2>&1
status=$?
cat "$OUT/guest-log.txt"
exit $status
"""

# A kernel log that holds a whole run (the default 128 KB wraps during the fuzz and the
# kill test, and the final scan must see every line from boot on).
LOG_BUF = "log_buf_len=8M"

# What the lockdep and KASAN kernel adds to the guest's results.
DEBUG_EXTRA = "--debug-state"
ALL_SECTIONS = [
    "load",
    "params",
    "cache",
    "bad_inputs",
    "unprivileged",
    "snapshot",
    "parallel",
    "fuzz",
    "kill",
    "reload",
]


@functools.cache
def other_abi_build(target: str) -> Build:
    """The module with SHRINKMEM_ABI_VERSION raised by one, for the client's version check.

    On a kernel of the upstream series too: the in-tree driver's version never changes (its header
    has none; it always reports 2), so a driver speaking another one can only be another build, and
    this one, calling the series' export directly, is what the client must refuse there."""
    release = release_of(target)
    directory = copy_kmod(vm.VM_ROOT / f"kmod-other-abi-{release}")
    header = directory / "uapi" / "shrinkmem.h"
    version = header_abi_version()
    text = header.read_text().replace(
        f"#define SHRINKMEM_ABI_VERSION {version}", f"#define SHRINKMEM_ABI_VERSION {version + 1}"
    )
    header.write_text(text)
    result = make(directory, f"KDIR={kdir_of(target)}", *make_vars_of(target))
    return Build(release, kdir_of(target), directory, result.returncode, result.stdout + result.stderr)


@dataclass(frozen=True)
class GuestPlan:
    """What runs in one target: the sections, and the size of the kill test's hog and request."""

    sections: List[str]
    hog_mb: int = KILL_HOG_MB
    kill_mb: int = KILL_REQUEST_MB


PLANS = {
    # Half the default sizes: a 1000 MB hog and 1200 MB requests. Each signal and the
    # freezer stop a request 125 MB into its hog, far from its end.
    "6.1": GuestPlan(ALL_SECTIONS, hog_mb=1000, kill_mb=1200),
    "6.12": GuestPlan(ALL_SECTIONS),
    # kCFI with the export patch, lockdep and KASAN: the direct call under kCFI, every
    # section watched by lockdep and KASAN (they slow reclaim down several times under
    # emulation: a smaller hog).
    "kcfi-debug-export": GuestPlan(ALL_SECTIONS, hog_mb=1000, kill_mb=1200),
    # The in-tree driver on a gcc kernel without debug options: every section, the sizes of
    # Debian's 6.1.
    "upstream-6.1": GuestPlan(ALL_SECTIONS, hog_mb=1000, kill_mb=1200),
}
FULL_TARGETS = [target for target in TARGETS if "kill" in PLANS[target].sections]


_RUNS: Dict[str, Union[GuestRun, str]] = {}


def run_guest(target: str) -> GuestRun:
    """The target's one boot; a boot that failed is not repeated for every test that looks at it."""
    reason = vm.available()
    if reason is not None:
        pytest.skip(reason)
    if target not in _RUNS:
        try:
            _RUNS[target] = _boot(target)
        except (AssertionError, vm.VMError, testkernels.KernelBuildError, pytest.fail.Exception) as error:
            _RUNS[target] = f"{target}: {error}"
    found = _RUNS[target]
    if isinstance(found, str):
        pytest.fail(found)
    return found


def _boot(target: str) -> GuestRun:
    plan = PLANS[target]
    built = build(target)
    assert built.returncode == 0, built.output
    other = other_abi_build(target)
    assert other.returncode == 0, other.output
    run_dir = vm.new_run_dir(f"kmod-{target}-")
    data = make_data_disk(run_dir, cache_mb=640)
    extra = [f"--sections {','.join(plan.sections)}"]
    if target == "kcfi-debug-export":
        extra.append(DEBUG_EXTRA)
    try:
        result = vm.run_in_vm(
            GUEST_SCRIPT.format(
                ko=built.ko,
                other_ko=other.ko,
                hog_mb=plan.hog_mb,
                kill_mb=plan.kill_mb,
                extra=" ".join(extra),
            ),
            kernel=kernel_of(target),
            memory=GUEST_MEMORY,
            cpus=2,
            disks=[data],
            append=[LOG_BUF],
            out_dir=run_dir,
            timeout=1800,
        )
    finally:
        data.unlink()
    results_file = run_dir / "results.json"
    if not results_file.exists():
        pytest.fail(f"{target}: the guest wrote no results (exit {result.returncode}):\n{result.output[-6000:]}")
    run = GuestRun(
        target, release_of(target), json.loads(results_file.read_text()), result.output, run_dir, result.seconds
    )
    (run_dir / "figures.json").write_text(json.dumps(figures(run), indent=1))
    return run


@pytest.fixture(scope="module", params=TARGETS)
def guest(request: pytest.FixtureRequest) -> GuestRun:
    """One boot per target, shared by every test of this module that looks at it."""
    return run_guest(request.param)


@pytest.fixture(scope="module", params=FULL_TARGETS)
def guest_full(request: pytest.FixtureRequest) -> GuestRun:
    """The targets where the kill test (SIGKILL, SIGTERM, SIGCHLD, SA_RESTART, the freezer) ran too."""
    return run_guest(request.param)


def kb(snapshot: Dict[str, int], key: str) -> int:
    return snapshot[key]


def free_kb(snapshot: Dict[str, int]) -> int:
    """Free memory including the per-CPU free lists, which MemFree leaves out."""
    return snapshot["MemFree_kB"] + snapshot["pcp_count_pages"] * PAGE_KB


def figures(run: GuestRun) -> Dict[str, Any]:
    """The measured numbers worth reporting, from one guest run (written to figures.json)."""
    out: Dict[str, Any] = {"kernel": run.release, "vm_seconds": round(run.vm_seconds, 1)}
    out["boot_seconds_to_script"] = run.results.get("uptime_at_start")
    out["guest_seconds"] = run.results.get("uptime_at_end")
    out["section_seconds"] = run.results.get("section_seconds")
    cache = run.results.get("cache", {})
    if "text_before" in cache:
        for kind in ("text", "ioctl"):
            before, after = cache[f"{kind}_before"], cache[f"{kind}_after"]
            out[f"{kind}_MemFree_delta_MB"] = round((after["MemFree_kB"] - before["MemFree_kB"]) / 1024, 1)
            out[f"{kind}_free_incl_pcp_delta_MB"] = round((free_kb(after) - free_kb(before)) / 1024, 1)
            out[f"{kind}_Cached_delta_MB"] = round((after["Cached_kB"] - before["Cached_kB"]) / 1024, 1)
        out["ioctl_reclaimed_MB"] = round(cache["ioctl_result"]["pages_reclaimed"] * PAGE_KB / 1024, 1)
        out["ioctl_duration_ms"] = round(cache["ioctl_result"]["duration_ns"] / 1e6, 1)
        out["text_summary_last_reclaimed_MB"] = round(
            int(cache["text_summary"]["last_pages_reclaimed"]) * PAGE_KB / 1024, 1
        )
    kill = run.results.get("kill", {})
    if "killed" in kill:
        out["kill_request_MB"] = kill["request_mb"]
        out["uninterrupted_seconds"] = kill["full_seconds"]
        out["uninterrupted_reclaimed_MB"] = round(kill["full_result"]["pages_reclaimed"] * PAGE_KB / 1024, 1)
        out["killed_after_s"] = kill["killed"]["kill_after_s"]
        out["exit_after_kill_s"] = kill["killed"]["exit_after_kill_s"]
        out["killed_reclaimed_MB"] = round(int(kill["killed"]["summary"]["last_pages_reclaimed"]) * PAGE_KB / 1024, 1)
        out["longest_chunk_ms"] = round(int(kill.get("full_summary", {}).get("longest_chunk_ns", 0)) / 1e6, 1)
    if "summary" in kill.get("sigterm", {}):
        out["sigterm_then_kill_reclaimed_MB"] = round(
            int(kill["sigterm"]["summary"]["last_pages_reclaimed"]) * PAGE_KB / 1024, 1
        )
    if "summary" in kill.get("sigchld", {}):
        out["sigchld_return_after_signal_s"] = kill["sigchld"].get("return_after_signal_s")
        out["sigchld_reclaimed_MB"] = round(int(kill["sigchld"]["summary"]["last_pages_reclaimed"]) * PAGE_KB / 1024, 1)
    freezer = kill.get("freezer", {})
    if "writer" in freezer:
        out["freezer_state_write"] = freezer["state_write"]
        out["freezer_seconds"] = freezer["freeze_seconds"]
        out["freezer_reclaimed_MB"] = round(freezer["writer"].get("pages_reclaimed", 0) * PAGE_KB / 1024, 1)
    fuzz = run.results.get("fuzz", {})
    if "counts" in fuzz:
        out["fuzz_seconds"] = fuzz["seconds"]
    return out


def summary_int(summary: Dict[str, str], key: str) -> int:
    return int(summary[key])


def reached_its_signal(check: Dict[str, Any]) -> None:
    """A part-way check's request was running when its signal (or the freeze) came. Any attempt
    before it that ended on its own ended SHRINKMEM_RESULT_SHORT, what the module does when a
    chunk finds next to nothing to take, and nothing else: no signal had been sent to it."""
    assert not check["part_way"].get("ended"), check
    for early in check["ended_first"]:
        assert summary_int(early["summary"], "last_flags") == shrinkmem.RESULT_SHORT, early
        assert early["summary"]["last_result"] == "0", early


SUMMARY_KEYS = {
    "method",
    "abi_version",
    "page_size",
    "max_pages",
    "calls",
    "pages_requested",
    "pages_reclaimed",
    "last_pages_requested",
    "last_pages_reclaimed",
    "last_duration_ns",
    "last_result",
    "last_flags",
    "longest_chunk_ns",
}


def parse_summary(text: str) -> Dict[str, str]:
    """read()'s text as key -> value; every line must be `key: value`."""
    out: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        assert sep and key not in out, f"bad summary line {line!r} in {text!r}"
        out[key] = value
    return out


@pytest.mark.vm
def test_module_loads_with_device_node_and_modinfo(guest: GuestRun) -> None:
    load = guest.section("load")
    assert load["insmod_rc"] == 0, load["insmod_stderr"] + "\n".join(load["load_log"])
    assert load["char_device"] and load["mode"] == "0o600" and load["uid"] == 0 and load["gid"] == 0
    kdir = build(guest.series).kdir
    method = "export" if exports_shrink_all_memory(kdir) else "kprobe"
    assert load["info"]["method"] == method
    assert load["summary"]["method"] == method
    assert load["info"]["abi_version"] == header_abi_version() == shrinkmem.ABI_VERSION
    assert load["info"]["page_size"] == PAGE_KB * 1024
    # max_mb defaults to a quarter of RAM (totalram_pages() in MB, divided by 4).
    assert int(load["parameters"]["max_mb"]) == max(load["totalram_pages"] // MB_PAGES // 4, 1)
    assert load["info"]["max_pages"] == int(load["parameters"]["max_mb"]) * MB_PAGES
    assert load["parameters"]["chunk_mb"] == "16"
    modinfo = dict(re.findall(r"^(\w+):[ \t]*(.*)$", load["modinfo"], re.M))  # a field may be empty (depends:)
    if guest.series in ALL_IN_TREE_KERNELS:
        # IN_TREE_DIFFERENCES: no line at load and no version; what holds instead.
        assert [line for line in load["load_log"] if "shrinkmem" in line] == [], load["load_log"]
        assert "version" not in modinfo and modinfo["intree"] == "Y", load["modinfo"]
    else:
        assert any(f"shrinkmem: ready: shrink_all_memory() via {method}" in line for line in load["load_log"])
        assert modinfo["version"] == module_version() == dkms_conf()["PACKAGE_VERSION"]
    assert modinfo["license"] == "GPL"
    assert modinfo["description"] and modinfo["author"]
    assert modinfo["vermagic"].split()[0] == guest.release == guest.results["uname"]
    assert re.search(r"^parm:\s+max_mb:", load["modinfo"], re.M)
    assert re.search(r"^parm:\s+chunk_mb:", load["modinfo"], re.M)
    assert load["summary"]["calls"] == "0"


@pytest.mark.vm
def test_page_cache_is_on_a_block_device(guest: GuestRun) -> None:
    """The precondition of the reclaim checks: the cache is ext4 on the virtio disk, not tmpfs."""
    prepare = guest.section("cache")["prepare"]
    assert prepare["fs"] == ["ext4", "/dev/vda"]
    grown = prepare["after_read"]["Cached_kB"] - prepare["before_read"]["Cached_kB"]
    assert grown >= prepare["file_mb"] * 1024 * 0.9, prepare


@pytest.mark.vm
def test_text_write_of_100_reclaims_at_least_80_mb(guest: GuestRun) -> None:
    cache = guest.section("cache")
    assert cache["text_write"] == {"ret": 4}
    before, after = cache["text_before"], cache["text_after"]
    cached_drop_mb = (before["Cached_kB"] - after["Cached_kB"]) / 1024
    free_rise_mb = (free_kb(after) - free_kb(before)) / 1024
    assert cached_drop_mb >= 80, cache
    assert free_rise_mb >= 80, cache
    reclaimed = summary_int(cache["text_summary"], "last_pages_reclaimed")
    # Reclaim frees pages in batches, so it may overshoot a little.
    assert 100 * MB_PAGES <= reclaimed <= 110 * MB_PAGES, cache["text_summary"]


@pytest.mark.vm
def test_one_log_line_per_text_write(guest: GuestRun) -> None:
    cache = guest.section("cache")
    lines = [line for line in cache["text_log"] if "shrinkmem:" in line]
    assert len(lines) == 1, lines
    match = re.search(r"shrinkmem: requested 100 MB, reclaimed (\d+) pages in (\d+) us$", lines[0])
    assert match, lines[0]
    assert int(match.group(1)) == summary_int(cache["text_summary"], "last_pages_reclaimed")
    assert int(match.group(2)) == summary_int(cache["text_summary"], "last_duration_ns") // 1000


# The ioctl's reclaimed count and the rise of free memory (MemFree plus the per-CPU
# lists) may differ by what other tasks allocate or free meanwhile and by pages
# reclaim frees in batches: 10% of the request.
IOCTL_TOLERANCE = 0.10


@pytest.mark.vm
def test_ioctl_reclaimed_count_matches_free_memory(guest: GuestRun) -> None:
    cache = guest.section("cache")
    result = cache["ioctl_result"]
    assert result["pages_requested"] == 100 * MB_PAGES
    assert 100 * MB_PAGES <= result["pages_reclaimed"] <= 110 * MB_PAGES, result
    assert result["duration_ns"] > 0
    assert result["result"] == 0, result  # the whole request was reclaimed
    before, after = cache["ioctl_before"], cache["ioctl_after"]
    rise_pages = (free_kb(after) - free_kb(before)) // PAGE_KB
    assert abs(rise_pages - result["pages_reclaimed"]) <= IOCTL_TOLERANCE * result["pages_requested"], (
        rise_pages,
        result,
        before,
        after,
    )
    assert (before["Cached_kB"] - after["Cached_kB"]) / 1024 >= 80
    summary = cache["ioctl_summary"]
    assert summary_int(summary, "last_pages_reclaimed") == result["pages_reclaimed"]
    assert summary_int(summary, "last_duration_ns") == result["duration_ns"]
    assert summary_int(summary, "calls") == 2


@pytest.mark.vm
@pytest.mark.parametrize("name", sorted(EXPECTED_WRITE_ERRNO))
def test_bad_text_input_is_rejected(guest: GuestRun, name: str) -> None:
    writes = guest.section("bad_inputs")["writes"]
    assert writes[name] == {"errno": EXPECTED_WRITE_ERRNO[name]}


@pytest.mark.vm
@pytest.mark.parametrize("name", sorted(EXPECTED_IOCTL_ERRNO))
def test_bad_ioctl_is_rejected(guest: GuestRun, name: str) -> None:
    ioctls = guest.section("bad_inputs")["ioctls"]
    assert ioctls[name] == {"errno": EXPECTED_IOCTL_ERRNO[name]}


@pytest.mark.vm
def test_bad_inputs_run_no_reclaim_and_log_nothing(guest: GuestRun) -> None:
    bad = guest.section("bad_inputs")
    assert sorted(bad["writes"]) == sorted(EXPECTED_WRITE_ERRNO)
    assert bad["calls_before"] == bad["calls_after"]
    assert [line for line in bad["log"] if "shrinkmem" in line] == []


@pytest.mark.vm
def test_efault_paths_reclaim_nothing(guest: GuestRun) -> None:
    """A write from an unmapped buffer and an ioctl whose reply cannot be written: EFAULT, and no request counted."""
    bad = guest.section("bad_inputs")
    assert bad["efault"] == {"write_unmapped": {"errno": "EFAULT"}, "ioctl_read_only_reply": {"errno": "EFAULT"}}
    assert bad["calls_before"] == bad["calls_after"]
    assert bad["client_error"] == ("/dev/shrinkmem: SHRINKMEM_IOC_RECLAIM of 0 pages failed: EINVAL (Invalid argument)")


@pytest.mark.vm
def test_unprivileged_callers_are_refused(guest: GuestRun) -> None:
    unpriv = guest.section("unprivileged")
    nobody = unpriv["nobody"]
    assert nobody["uid"] == 65534 and nobody["open"] == "EACCES", nobody
    no_admin = unpriv["root_without_cap_sys_admin"]
    # Requests need CAP_SYS_ADMIN; the INFO ioctl and read() answer the same question and need none.
    assert no_admin == {
        "uid": 0,
        "euid": 0,
        "open": "ok",
        "write": "EPERM",
        "reclaim": "EPERM",
        "info": "ok",
        "read": "ok",
    }
    opened = unpriv["nobody_device_0666"]
    assert opened == {
        "uid": 65534,
        "euid": 65534,
        "open": "ok",
        "write": "EPERM",
        "reclaim": "EPERM",
        "info": "ok",
        "read": "ok",
    }
    assert unpriv["calls_before"] == unpriv["calls_mid"] == unpriv["calls_after_refusals"]


@pytest.mark.vm
def test_a_read_only_descriptor_cannot_reclaim(guest: GuestRun) -> None:
    """A descriptor root opened read-only (for statistics) reads and asks INFO; the reclaim ioctl is EBADF,
    as write() is, and nothing is counted."""
    unpriv = guest.section("unprivileged")
    assert unpriv["root_read_only"] == {
        "uid": 0,
        "euid": 0,
        "write": "EBADF",
        "reclaim": "EBADF",
        "info": "ok",
        "read": "ok",
    }
    # The two requests made through root's descriptor passed to nobody, and nothing else.
    assert int(unpriv["calls_after"]) == int(unpriv["calls_after_refusals"]) + 2


@pytest.mark.vm
def test_the_openers_capability_decides(guest: GuestRun) -> None:
    """A descriptor opened without CAP_SYS_ADMIN cannot reclaim even in root's hands; one opened by root can in nobody's."""
    unpriv = guest.section("unprivileged")
    assert unpriv["opened_by_nobody_used_by_root"] == {
        "uid": 0,
        "euid": 0,
        "write": "EPERM",
        "reclaim": "EPERM",
        "info": "ok",
        "read": "ok",
    }
    assert unpriv["opened_by_root_used_by_nobody"] == {
        "uid": 65534,
        "euid": 65534,
        "write": "ok",
        "reclaim": "ok",
        "info": "ok",
        "read": "ok",
    }
    # The two requests made through root's descriptor, and nothing else.
    assert int(unpriv["calls_after"]) == int(unpriv["calls_after_refusals"]) + 2


@pytest.mark.vm
def test_read_is_one_snapshot_until_a_seek_to_0(guest: GuestRun) -> None:
    snap = guest.section("snapshot")
    assert snap["write"] == {"ret": 2}
    first = parse_summary(snap["first"] + snap["rest"])
    fresh = parse_summary(snap["after_seek"])
    assert set(first) == set(fresh) == SUMMARY_KEYS, (first, fresh)
    assert int(fresh["calls"]) == int(first["calls"]) + 1
    assert int(fresh["pages_requested"]) == int(first["pages_requested"]) + MB_PAGES


@pytest.mark.vm
def test_parallel_writers_all_complete_and_add_up(guest: GuestRun) -> None:
    par = guest.section("parallel")
    writers, writes, request_mb = par["writers"], par["writes"], par["request_mb"]
    assert (writers, writes, request_mb) == (4, 10, 4)
    for output in par["outputs"]:
        assert output["rc"] == 0 and output["results"] == [2] * writes, output
    before, after = par["before"], par["after"]
    calls = summary_int(after, "calls") - summary_int(before, "calls")
    requested = summary_int(after, "pages_requested") - summary_int(before, "pages_requested")
    reclaimed = summary_int(after, "pages_reclaimed") - summary_int(before, "pages_reclaimed")
    assert calls == writers * writes
    assert requested == writers * writes * request_mb * MB_PAGES
    lines = [re.search(rf"shrinkmem: requested {request_mb} MB, reclaimed (\d+) pages", line) for line in par["log"]]
    logged = [int(m.group(1)) for m in lines if m]
    assert len(logged) == writers * writes
    assert sum(logged) == reclaimed
    assert reclaimed >= writers * writes * request_mb * MB_PAGES, "the page cache had room for every request"


TRACE_LINE = re.compile(
    r"^\s*(?P<task>.+)-(?P<pid>\d+)\s+\[\d+\].*?\s(?P<time>\d+(?:\.\d+)?): (?P<event>enter|exit):.*\s(?:nr|ret)=(?P<value>\d+)$"
)


def trace_events(lines: List[str]) -> List[tuple[int, str, int]]:
    """(pid, "enter" or "exit", pages asked or reclaimed) for each kprobe event of a tracefs trace, in order."""
    events = []
    for line in lines:
        match = TRACE_LINE.match(line)
        assert match, f"unparsed trace line {line!r}"
        events.append((int(match.group("pid")), match.group("event"), int(match.group("value"))))
    return events


def overlapping_requests(
    events: List[tuple[int, str, int]], request_pages: int, chunk_pages: int
) -> tuple[int, List[str]]:
    """Requests rebuilt from traced shrink_all_memory() calls, and every sign that two ran at once.

    A request of `request_pages` asks chunk by chunk (min(left, chunk_pages)) until it has
    them all or a chunk brings back less than an eighth of what it asked for, as the module
    does. Calls must not overlap, and once a request has begun no other task may call until
    it has ended.
    """
    problems: List[str] = []
    inside: Optional[int] = None
    current: Optional[List[int]] = None  # [pid, pages left]
    asked = 0
    done = 0
    for index, (pid, event, value) in enumerate(events):
        if event == "enter":
            if inside is not None:
                problems.append(f"event {index}: pid {pid} called while pid {inside} was inside")
            inside = pid
            if current is not None and current[0] != pid:
                problems.append(
                    f"event {index}: pid {pid} called while pid {current[0]}'s request had {current[1]} pages to go"
                )
                current = None
            if current is None:
                current = [pid, request_pages]
            if value != min(current[1], chunk_pages):
                problems.append(f"event {index}: pid {pid} asked {value} pages, its request had {current[1]} to go")
            asked = value
        else:
            if inside != pid:
                problems.append(f"event {index}: pid {pid} returned but pid {inside} was inside")
            inside = None
            if current is not None:
                current[1] -= value
                if current[1] <= 0 or value * SHORT_DIVISOR < asked:
                    current = None
                    done += 1
    return done, problems


def test_overlap_check_catches_interleaved_requests() -> None:
    """The check below can fail: overlapping calls, and requests whose chunks interleave, are both reported."""
    serial = [(1, "enter", 2), (1, "exit", 2), (1, "enter", 2), (1, "exit", 3), (2, "enter", 2), (2, "exit", 5)]
    assert overlapping_requests(serial, 4, 2) == (2, [])
    short = [(1, "enter", 8), (1, "exit", 0), (2, "enter", 8), (2, "exit", 8), (2, "enter", 8), (2, "exit", 8)]
    assert overlapping_requests(short, 16, 8) == (2, [])
    # A chunk short by less than seven eighths goes on: the request's next chunk asks for what is left.
    partial = [(1, "enter", 8), (1, "exit", 3), (1, "enter", 8), (1, "exit", 8), (1, "enter", 5), (1, "exit", 5)]
    assert overlapping_requests(partial, 16, 8) == (1, [])
    assert overlapping_requests([*partial, (2, "enter", 8), (2, "exit", 8)], 16, 8)[1] == []
    cut_in = [(1, "enter", 8), (1, "exit", 3), (2, "enter", 8), (2, "exit", 8)]
    assert overlapping_requests(cut_in, 16, 8)[1] != []
    overlapping = [(1, "enter", 2), (2, "enter", 2), (1, "exit", 2), (2, "exit", 2)]
    assert overlapping_requests(overlapping, 2, 2)[1] != []
    interleaved = [(1, "enter", 2), (1, "exit", 2), (2, "enter", 2), (2, "exit", 2), (1, "enter", 2), (1, "exit", 2)]
    assert overlapping_requests(interleaved, 4, 2)[1] != []
    enter = "          python-284     [000] .N...  1168.828969: enter: (shrink_all_memory+0x0/0x100) nr=256"
    leave = "          python-284     [000] .....  1169.080075: exit: (shrinkmem_reclaim+0xae/0x200 [shrinkmem] <- shrink_all_memory) ret=300"
    assert trace_events([enter, leave]) == [(284, "enter", 256), (284, "exit", 300)]
    # With the "counter" trace clock (guest_checks.start_trace) the time is a count, not seconds.
    counted = "          python-287     [001] .....   4512: enter: (shrink_all_memory+0x0/0x100) nr=246"
    assert trace_events([counted]) == [(287, "enter", 246)]


@pytest.mark.vm
def test_parallel_requests_never_run_at_once(guest: GuestRun) -> None:
    """kprobe events on shrink_all_memory() with its argument and result, 4 writers of 4-chunk requests: the
    requests rebuilt from the trace never overlap, call by call and request by request."""
    par = guest.section("parallel")
    events = trace_events(par["trace"])
    requests, problems = overlapping_requests(events, par["request_mb"] * MB_PAGES, par["chunk_mb"] * MB_PAGES)
    assert problems == []
    assert requests == par["writers"] * par["writes"]
    # The writers really competed: the trace switches between them many times.
    pids = {output["pid"] for output in par["outputs"]}
    assert {pid for pid, _, _ in events} == pids
    switches = sum(1 for (a, _, _), (b, _, _) in zip(events, events[1:]) if a != b)
    assert switches >= par["writers"], switches


@pytest.mark.vm
def test_killed_request_returns_promptly(guest_full: GuestRun) -> None:
    """SIGKILL part-way through a large request ends it within one chunk, not at the end of the request."""
    kill = guest_full.section("kill")
    full = kill["full_result"]
    assert full["pages_requested"] == kill["request_mb"] * MB_PAGES
    # Left alone, the request swaps out the hog (most of what it finds).
    assert full["pages_reclaimed"] * PAGE_KB >= 0.8 * kill["full_before"]["AnonPages_kB"], kill["full_before"]
    killed = kill["killed"]
    assert killed["returncode"] == -9
    assert "returned" not in killed["stdout_rest"]
    summary = killed["summary"]
    assert summary["last_result"] == "-4", summary  # -EINTR: stopped between chunks
    assert summary_int(summary, "last_pages_requested") == kill["request_mb"] * MB_PAGES
    assert summary_int(summary, "last_pages_reclaimed") < 0.8 * summary_int(summary, "last_pages_requested")
    assert any(f"requested {kill['request_mb']} MB" in line and "(interrupted)" in line for line in killed["log"])
    # The same request left alone does far more: the kill cut it short.
    assert 2 * summary_int(summary, "last_pages_reclaimed") < full["pages_reclaimed"]
    # A behaviour bound ("returns promptly"), generous for software emulation: one
    # chunk takes well under a second here, the uninterrupted request about 20 s
    # (kill["full_seconds"], reported in figures.json).
    assert killed["exit_after_kill_s"] < 10.0, killed


@pytest.mark.vm
def test_killed_waiter_leaves_the_queue_at_once(guest_full: GuestRun) -> None:
    """A writer waiting for the one-reclaim-at-a-time mutex can be killed while the other reclaims."""
    kill = guest_full.section("kill")
    waiter = kill["waiter"]
    assert waiter["first_still_running"], "the waiter must have queued behind the large request"
    assert waiter["returncode"] == -9 and "returned" not in waiter["stdout_rest"]
    # It never ran: no log line (the module's lines are on, see test_one_log_line_per_text_write).
    assert not any("requested 1 MB" in line for line in kill["killed"]["log"]), kill["killed"]["log"]
    assert waiter["exit_after_kill_s"] < 10.0, waiter


@pytest.mark.vm
def test_a_wait_for_the_mutex_restarts_under_sa_restart(guest_full: GuestRun) -> None:
    """Two 1 MB text writers wait behind a large request and get a handled SIGUSR1. The handler with
    SA_RESTART sees its write(2) restart transparently: it returns its full length once the large request
    is gone, and runs once. The one without gets EINTR at once, with nothing done. Neither wait is counted
    or logged."""
    restart = guest_full.section("kill")["restart"]
    assert restart["restarter_waiting"]["in_write"] and restart["eintr_waiting"]["in_write"], restart
    eintr = restart["eintr"]
    assert eintr["ret"] == -1 and eintr["errno"] == "EINTR", eintr
    assert len(eintr["signals_at"]) == 1, eintr
    assert restart["holder_running_after_eintr"] and restart["restarter_running_after_signal"], restart
    restarter = restart["restarter"]
    assert restarter["ret"] == restarter["length"] == 2, restarter
    assert len(restarter["signals_at"]) == 1, restarter
    # The large request (killed) and the restarted one: two calls, the last one 1 MB.
    assert restart["calls"] == 2, restart
    assert summary_int(restart["summary"], "last_pages_requested") == MB_PAGES
    assert restart["summary"]["last_result"] == "0", restart["summary"]
    lines = [line for line in restart["log"] if "shrinkmem: requested 1 MB" in line]
    assert len(lines) == 1 and not lines[0].endswith("(interrupted)"), restart["log"]


@pytest.mark.vm
def test_a_handled_sigterm_does_not_end_an_ioctl_and_sigkill_does(guest_full: GuestRun) -> None:
    """A daemon's SIGTERM (handled, not fatal) leaves a large SHRINKMEM_IOC_RECLAIM running: it swaps as much again
    after the signal. SIGKILL then ends it between chunks; read() says RESULT_INTERRUPTED with what it reclaimed,
    and last_result 0, what the ioctl returns when a signal stops it."""
    kill = guest_full.section("kill")
    term = kill["sigterm"]
    reached_its_signal(term)
    assert term["running_after_term"], term
    assert term["after_term"]["swapped_pages"] >= term["target_pages"] > 0, term
    assert term["returncode"] == -9, term
    summary = term["summary"]
    assert summary_int(summary, "last_pages_requested") == kill["request_mb"] * MB_PAGES
    assert 0 < summary_int(summary, "last_pages_reclaimed") < summary_int(summary, "last_pages_requested"), summary
    assert summary["last_result"] == "0" and summary_int(summary, "last_flags") == shrinkmem.RESULT_INTERRUPTED
    assert term["exit_after_kill_s"] < 10.0, (term, kill["full_summary"])


@pytest.mark.vm
def test_a_handled_sigchld_does_not_end_a_text_write(guest_full: GuestRun) -> None:
    """A handled SIGCHLD part-way through a large text write (libc's write(2), which Python does not retry):
    the write goes on to its end and returns its full length; the handler runs after it."""
    kill = guest_full.section("kill")
    chld = kill["sigchld"]
    reached_its_signal(chld)
    assert chld["returncode"] == 0, chld
    assert chld["ret"] == chld["length"] and "errno" not in chld, chld
    # The handler ran as the write ended (Python runs it once the call is back), not when the signal came.
    assert len(chld["signals_at"]) == 1 and abs(chld["returned_at"] - chld["signals_at"][0]) < 1.0, chld
    assert chld["return_after_signal_s"] > 1.0, chld
    summary = chld["summary"]
    assert summary_int(summary, "last_pages_requested") == kill["request_mb"] * MB_PAGES
    assert summary["last_result"] == "0" and summary_int(summary, "last_flags") & shrinkmem.RESULT_INTERRUPTED == 0
    line = f"requested {kill['request_mb']} MB, reclaimed {summary_int(summary, 'last_pages_reclaimed')} pages in "
    assert any(line in entry and not entry.endswith("(interrupted)") for entry in chld["log"]), chld["log"]


@pytest.mark.vm
def test_freezer_ends_a_request_cleanly_and_says_so(guest_full: GuestRun) -> None:
    """Freezing user space (suspend's pm_test "freezer") while a large ioctl runs: the request ends between chunks
    with RESULT_FROZEN, the freeze succeeds, and the task is thawed with its result."""
    freezer = guest_full.section("kill")["freezer"]
    reached_its_signal(freezer)
    assert "freeze" in freezer["states"], freezer["states"]
    assert freezer["state_write"] == "ok", freezer
    # "... (elapsed N seconds) done." before 6.1.85 or so, "... completed (elapsed N seconds)" after.
    froze = [line for line in freezer["log"] if "Freezing user space processes" in line]
    assert any("done" in line or "completed (elapsed" in line for line in froze), freezer["log"]
    assert not any("failed" in line or "aborted" in line for line in freezer["log"]), freezer["log"]
    writer = freezer["writer"]
    assert writer["returncode"] == 0, writer
    assert writer["result"] == shrinkmem.RESULT_FROZEN, writer
    assert 0 < writer["pages_reclaimed"] < writer["pages_requested"], writer
    assert writer["signals_at"] == []
    assert summary_int(freezer["summary"], "last_flags") == shrinkmem.RESULT_FROZEN
    assert freezer["summary"]["last_result"] == "0"


@pytest.mark.vm
def test_parameters_are_validated_in_sysfs(guest: GuestRun) -> None:
    params = guest.section("params")
    writes, before, total = params["writes"], params["before"], params["total_mb"]
    for name in ("max_mb=abc", "max_mb=0", "max_mb=-1", "max_mb=ram+1"):
        assert writes[name] == {"write": "EINVAL", "value": before["max_mb"]}, (name, writes[name])
    for name in ("chunk_mb=0", "chunk_mb=65", "chunk_mb=1024"):
        assert writes[name] == {"write": "EINVAL", "value": before["chunk_mb"]}, (name, writes[name])
    assert writes["max_mb=ram"] == {"write": "ok", "value": str(total)}
    assert writes["chunk_mb=64"] == {"write": "ok", "value": "64"}
    assert params["restored"] == {name: {"write": "ok", "value": value} for name, value in before.items()}
    messages = [line.split("shrinkmem: ", 1)[1] for line in params["log"] if "shrinkmem: " in line]
    assert messages == [
        f"max_mb=abc: not a whole number of megabytes from 1 to {total}",
        f"max_mb=0: not a whole number of megabytes from 1 to {total}",
        f"max_mb=-1: not a whole number of megabytes from 1 to {total}",
        f"max_mb={total + 1}: more than this machine's {total} MB of RAM",
        "chunk_mb=0: not a whole number of megabytes from 1 to 64",
        "chunk_mb=65: not a whole number of megabytes from 1 to 64",
        "chunk_mb=1024: not a whole number of megabytes from 1 to 64",
    ], params["log"]


@pytest.mark.vm
def test_bad_parameters_refuse_the_load(guest: GuestRun) -> None:
    reload = guest.section("reload")
    total = guest.section("params")["total_mb"]
    expected = {
        "max_mb=0": f"max_mb=0: not a whole number of megabytes from 1 to {total}",
        "max_mb=ram+1": f"max_mb={total + 1}: more than this machine's {total} MB of RAM",
        "max_mb=abc": f"max_mb=abc: not a whole number of megabytes from 1 to {total}",
        "chunk_mb=65": "chunk_mb=65: not a whole number of megabytes from 1 to 64",
    }
    for name, message in expected.items():
        refused = reload["bad_load_parameters"][name]
        assert refused["rc"] != 0 and "Invalid parameters" in refused["stderr"], (name, refused)
        assert not refused["loaded"], name
        assert any(line.endswith(f"shrinkmem: {message}") for line in refused["log"]), (name, refused["log"])


@pytest.mark.vm
def test_rmmod_while_open_is_refused_and_the_module_keeps_working(guest: GuestRun) -> None:
    busy = guest.section("reload")["rmmod_while_open"]
    assert busy["rc"] != 0 and "in use" in busy["stderr"], busy
    assert busy["module_still_there"] and busy["device_still_there"]
    assert busy["write_after"] == {"ret": 2}


@pytest.mark.vm
def test_client_refuses_a_module_of_another_abi_version(guest: GuestRun) -> None:
    other = guest.section("reload")["other_abi"]
    assert other["insmod_rc"] == 0, other
    assert other["client"] == (
        f"/dev/shrinkmem: the loaded shrinkmem module speaks ABI version {shrinkmem.ABI_VERSION + 1}, this shrinkd needs"
        f" version {shrinkmem.ABI_VERSION}: load the module that came with this shrinkd"
    )
    assert other["rmmod_rc"] == 0


@pytest.mark.vm
def test_fuzz_gets_only_documented_errors(guest: GuestRun) -> None:
    fuzz = guest.section("fuzz")
    assert fuzz["unexpected"] == []
    counts = fuzz["counts"]
    assert sum(counts.values()) >= 0.9 * fuzz["calls"]
    for key in (
        "write:ok",
        "write:EINVAL",
        "write:ERANGE",
        "reclaim:ok",
        "reclaim:EINVAL",
        "reclaim:ERANGE",
        "reclaim:EFAULT",
        "info:ok",
        "other_ioctl:ENOTTY",
        "read:ok",
    ):
        assert counts.get(key, 0) > 0, f"the fuzz never produced {key}: {counts}"


@pytest.mark.vm
def test_rmmod_is_clean_and_insmod_again_takes_max_mb(guest: GuestRun) -> None:
    reload = guest.section("reload")
    assert reload["rmmod_rc"] == 0
    assert not reload["device_after_rmmod"] and not reload["module_after_rmmod"]
    assert reload["insmod_rc"] == 0, reload["insmod_stderr"]
    assert reload["device_after_insmod"]
    assert reload["max_mb_param"] == "64"
    assert reload["max_pages"] == 64 * MB_PAGES
    assert reload["write_64"] == {"ret": 3}
    assert reload["write_65"] == {"errno": "ERANGE"}
    assert reload["summary"]["calls"] == "1"
    assert reload["final_rmmod_rc"] == 0 and not reload["device_after_final_rmmod"]


@pytest.mark.vm
def test_kernel_log_stays_clean(guest: GuestRun) -> None:
    dmesg = guest.results["dmesg"]
    # The in-tree driver says nothing at load (IN_TREE_DIFFERENCES): the lines of its requests
    # show that the log holds the run.
    assert ("shrinkmem: requested" if guest.series in ALL_IN_TREE_KERNELS else "shrinkmem: ready") in dmesg
    bad = [line for line in dmesg.splitlines() if BAD_KERNEL_LOG.search(line)]
    assert bad == [], "\n".join(bad)
    if guest.series == "kcfi-debug-export":
        # Here the scan means something: lockdep and KASAN watched the whole suite, and lockdep was
        # still on at the end (it turns itself off after its first report).
        config = kernel_config(kdir_of(guest.series))
        assert config.get("CONFIG_PROVE_LOCKING") == "y" and config.get("CONFIG_KASAN") == "y"
        assert "KernelAddressSanitizer initialized" in dmesg
        debug = guest.results.get("debug_state")
        assert debug is not None and debug["debug_locks"] == 1 and debug["lock_classes"] > 0, debug
        assert list(guest.results["section_seconds"]) == ALL_SECTIONS, guest.results["section_seconds"]
    assert list(guest.results["section_seconds"]) == PLANS[guest.series].sections


def test_every_section_runs_on_the_in_tree_driver() -> None:
    """Nothing of the suite is left out on the kernels of the upstream series: each runs every
    section, and what does not apply to the in-tree driver is named with its reason."""
    for name in ALL_IN_TREE_KERNELS:
        assert PLANS[name].sections == ALL_SECTIONS, name
        spec = testkernels.SPECS[name]
        # The guest loads the driver the kernel's own build made from the whole series.
        assert spec.series and not spec.export_patch and spec.keep_modules == ("drivers/misc/shrinkmem.ko",), spec
        assert testkernels.parse_fragment(spec.fragment) == {"CONFIG_HIBERNATION": "y", "CONFIG_SHRINKMEM": "m"}


# ---------------------------------------------------------------- kernels that must refuse the module

REFUSAL_SCRIPT = """\
$PY tests/kmod/guest_checks.py --ko {ko} --out "$OUT" --sections load > "$OUT/guest-log.txt" 2>&1
status=$?
cat "$OUT/guest-log.txt"
exit $status
"""


@pytest.fixture(scope="module", params=sorted(REFUSALS))
def refusal(request: pytest.FixtureRequest) -> Iterator[GuestRun]:
    reason = vm.available()
    if reason is not None:
        pytest.skip(reason)
    target: str = request.param
    built = build(target)
    assert built.returncode == 0, built.output
    run_dir = vm.new_run_dir(f"kmod-{target}-")
    result = vm.run_in_vm(
        REFUSAL_SCRIPT.format(ko=built.ko),
        kernel=kernel_of(target),
        memory="1G",
        append=[LOG_BUF],
        out_dir=run_dir,
        timeout=900,
    )
    results_file = run_dir / "results.json"
    if not results_file.exists():
        pytest.fail(f"{target}: the guest wrote no results (exit {result.returncode}):\n{result.output[-6000:]}")
    yield GuestRun(
        target, release_of(target), json.loads(results_file.read_text()), result.output, run_dir, result.seconds
    )


@pytest.mark.vm
def test_refusing_kernel_refuses_with_one_line_and_registers_nothing(refusal: GuestRun) -> None:
    load = refusal.section("load")
    assert refusal.results["uname"] == refusal.release
    assert load["insmod_rc"] != 0
    assert "Operation not supported" in load["insmod_stderr"], load["insmod_stderr"]
    # The module's own lines: not the kernel's notices about any unsigned out-of-tree module.
    lines = [line for line in load["load_log"] if "shrinkmem" in line and not KERNEL_MODULE_NOTICE.search(line)]
    assert len(lines) == 1 and REFUSALS[refusal.series] in lines[0], load["load_log"]
    assert not load["device_exists"] and not load["module_listed"] and not load["misc_listed"]
    # Nothing calls shrink_all_memory(): the refusal is all the module does there.
    assert "shrink_all_memory" not in undefined_symbols(build(refusal.series).ko)


@pytest.mark.vm
def test_refusing_kernel_log_has_no_warning(refusal: GuestRun) -> None:
    dmesg = refusal.results["dmesg"]
    bad = [
        line for line in dmesg.splitlines() if BAD_KERNEL_LOG.search(line) and "shrinkmem: refusing to load" not in line
    ]
    assert bad == [], "\n".join(bad)
