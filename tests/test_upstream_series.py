"""The shrinkmem patch series for Linux 6.1 (kmod/patches/upstream/), checked without a kernel build.

The series: the shrink_all_memory() export, the uapi header, the in-tree driver
(drivers/misc/shrinkmem.c), the ioctl-number.rst entry and the documentation. Here:
its files are there in order, each patch has a commit message, a Signed-off-by and a
diffstat; the cover letter quotes docs/outcome.md's reclaim-safety figures as the doc
has them now; checkpatch --strict is clean on each patch; the series applies cleanly,
in order, to Debian's linux-source-6.1; and the in-tree uapi header agrees with the
out-of-tree module's (kmod/uapi/shrinkmem.h) on ioctl numbers, struct layouts and
constants, as the compiler sees them.

With SHRINKD_TEST_KERNELS=1 only, one more test builds the driver from the series, with
W=1, against the test kernel of tests/testkernels.py that carries the export
(kcfi-debug-export: clang 16, kCFI, lockdep, KASAN), and one checks the test kernel built
from the whole series (upstream-6.1: gcc, CONFIG_SHRINKMEM=m): its driver was built in
its tree without a warning and calls the export. tests/test_kmod_vm.py runs the module
suite on that driver.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from tests import test_kmod_vm as kmod_vm
from tests import testkernels, vm

REPO = vm.REPO
SERIES_DIR = testkernels.SERIES_DIR
OUTCOME = REPO / "docs" / "outcome.md"
OUT_OF_TREE_HEADER = REPO / "kmod" / "uapi" / "shrinkmem.h"
EXPORT_PATCH = REPO / "kmod" / "patches" / "export-shrink_all_memory.patch"
SIGNED_OFF = "Signed-off-by: shrinkd maintainers <maintainers@shrinkd.example>"
IN_TREE_HEADER = "include/uapi/linux/shrinkmem.h"
IN_TREE_DRIVER = "drivers/misc/shrinkmem.c"


@dataclass(frozen=True)
class Patch:
    path: Path
    number: int
    total: int
    subject: str
    message: str  # the commit message: from after the headers to the "---" line
    diffstat: str
    diff: str

    def new_file(self, name: str) -> str:
        """The text of a file the patch creates."""
        match = re.search(
            rf"^diff --git a/{re.escape(name)} b/{re.escape(name)}\nnew file mode \d+\n.*?^\+\+\+ b/{re.escape(name)}\n"
            r"@@ -0,0 \+1,(\d+) @@\n",
            self.diff,
            re.M | re.S,
        )
        assert match, f"{self.path.name}: does not create {name}"
        lines = self.diff[match.end() :].splitlines()[: int(match.group(1))]
        assert all(line.startswith("+") for line in lines), f"{self.path.name}: {name} is cut short"
        return "".join(line[1:] + "\n" for line in lines)

    def touched(self) -> List[str]:
        return re.findall(r"^diff --git a/(\S+) b/\S+$", self.diff, re.M)


def parse(path: Path) -> Patch:
    text = path.read_text()
    subject = re.search(r"^Subject: \[PATCH (\d+)/(\d+)\] (.+(?:\n .+)*)$", text, re.M)
    assert subject, f"{path.name}: no 'Subject: [PATCH n/N] ...' line"
    head, sep, rest = text.partition("\n---\n")
    if not sep and path.name.startswith("0000"):
        # The cover letter: its shortlog and diffstat follow the message without a separator.
        head, rest = text, text[text.index("\n\n", subject.end()) :]
    assert sep or path.name.startswith("0000"), f"{path.name}: no '---' line between the message and the diffstat"
    message = head[head.index("\n\n", subject.end() - 1) :].strip() if "\n\n" in head[subject.end() - 1 :] else ""
    diff_start = rest.find("\ndiff --git ")
    diffstat = rest if diff_start < 0 else rest[:diff_start]
    diff = "" if diff_start < 0 else rest[diff_start + 1 :]
    return Patch(
        path, int(subject.group(1)), int(subject.group(2)), " ".join(subject.group(3).split()), message, diffstat, diff
    )


def series_files() -> List[Path]:
    return sorted(SERIES_DIR.glob("*.patch"))


def series() -> List[Patch]:
    return [parse(path) for path in series_files()]


def patches() -> List[Patch]:
    return [patch for patch in series() if patch.number > 0]


def patch_creating(name: str) -> Patch:
    found = [patch for patch in patches() if f"diff --git a/{name} b/{name}\nnew file mode" in patch.diff]
    assert len(found) == 1, f"{name}: created by {len(found)} patches of the series"
    return found[0]


# ---------------------------------------------------------------- files, messages, diffstats


def test_series_files_are_numbered_in_order() -> None:
    files = series_files()
    assert files, f"{SERIES_DIR}: no patches"
    numbers = [int(path.name[:4]) for path in files]
    assert numbers == list(range(len(files))), [path.name for path in files]
    assert files[0].name == "0000-cover-letter.patch"
    parsed = series()
    assert [patch.number for patch in parsed] == numbers
    assert {patch.total for patch in parsed} == {len(files) - 1}
    for path, patch in zip(files[1:], parsed[1:]):
        # git format-patch names a file after its subject.
        slug = re.sub(r"[^A-Za-z0-9_]+", "-", patch.subject).strip("-")
        assert path.name[5 : -len(".patch")] == slug[: len(path.name) - 5 - len(".patch")], path.name


def test_each_patch_has_a_message_a_sign_off_and_a_diffstat() -> None:
    for patch in patches():
        body = patch.message.split(SIGNED_OFF)[0].strip()
        assert len(body.split()) >= 20, f"{patch.path.name}: the commit message says too little: {body!r}"
        assert patch.message.rstrip().endswith(SIGNED_OFF), f"{patch.path.name}: no {SIGNED_OFF!r} at the end"
        assert re.search(r"^ \d+ files? changed", patch.diffstat, re.M), f"{patch.path.name}: no diffstat"
        for name in patch.touched():
            # A diffstat shortens long paths to ".../tail": match on the tail.
            tail = name if len(name) < 40 else name.split("/", 2)[-1]
            assert tail in patch.diffstat, f"{patch.path.name}: {name} missing from the diffstat"
        assert patch.diff, f"{patch.path.name}: no diff"
        assert re.match(r"[\w/.-]+: ", patch.subject), f"{patch.path.name}: subject lacks a subsystem prefix"
    cover = series()[0]
    assert "*** SUBJECT HERE ***" not in cover.subject and "*** BLURB HERE ***" not in cover.message
    assert re.search(r"^ \d+ files changed", cover.diffstat + cover.message, re.M)


def test_the_series_is_what_the_brief_of_each_patch_says() -> None:
    """The export, the header, the driver with its Kconfig and Makefile line, ioctl-number.rst, the docs."""
    by_file = {name: patch.number for patch in patches() for name in patch.touched()}
    assert by_file["mm/vmscan.c"] < by_file[IN_TREE_HEADER] < by_file[IN_TREE_DRIVER]
    assert by_file["drivers/misc/Kconfig"] == by_file["drivers/misc/Makefile"] == by_file[IN_TREE_DRIVER]
    assert "Documentation/userspace-api/ioctl/ioctl-number.rst" in by_file
    assert "Documentation/userspace-api/shrinkmem.rst" in by_file
    # Each patch that adds a file also updates MAINTAINERS (checkpatch asks for it).
    for patch in patches():
        if "\nnew file mode" in patch.diff:
            assert "MAINTAINERS" in patch.touched(), patch.path.name
    # The export is the out-of-tree module's export patch, line for line.
    added = [
        line
        for line in patch_of("mm/vmscan.c").diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    assert added == [
        line for line in EXPORT_PATCH.read_text().splitlines() if line.startswith("+") and not line.startswith("+++")
    ]
    assert added == ["+EXPORT_SYMBOL_GPL(shrink_all_memory);"]


def patch_of(name: str) -> Patch:
    return next(patch for patch in patches() if name in patch.touched())


def test_kconfig_entry_is_a_tristate_depending_on_hibernation() -> None:
    patch = patch_of("drivers/misc/Kconfig")
    entry = re.search(r"^\+config SHRINKMEM\n((?:\+\t.*\n|\+\n)+)", patch.diff, re.M)
    assert entry, "no 'config SHRINKMEM' entry"
    body = entry.group(1)
    assert re.search(r"^\+\ttristate \"", body, re.M)
    assert re.search(r"^\+\tdepends on HIBERNATION$", body, re.M)
    assert re.search(r"^\+\thelp$", body, re.M)
    assert re.search(r"^\+obj-\$\(CONFIG_SHRINKMEM\)\s+\+= shrinkmem\.o$", patch.diff, re.M)


def test_the_in_tree_driver_calls_shrink_all_memory_directly() -> None:
    """No kprobe path and none of the refusals that only the kprobe path needs."""
    driver = patch_creating(IN_TREE_DRIVER).new_file(IN_TREE_DRIVER)
    assert "shrink_all_memory(chunk)" in driver
    for word in ("kprobe", "refusing", "X86_FEATURE_IBT", "CFI", "SHRINKMEM_EXPORTED", "MODULE_VERSION"):
        assert word not in driver, word
    assert "#include <linux/shrinkmem.h>" in driver


def test_what_the_suite_says_the_in_tree_driver_leaves_out_it_does() -> None:
    """tests/test_kmod_vm.py runs every check on the in-tree driver but those IN_TREE_DIFFERENCES names:
    no line at load (it logs only errors, and each request with dynamic debug) and no module version."""
    assert sorted(kmod_vm.IN_TREE_DIFFERENCES) == ["module version", "ready line"]
    driver = patch_creating(IN_TREE_DRIVER).new_file(IN_TREE_DRIVER)
    assert "MODULE_VERSION" not in driver
    printed = re.findall(r"\b(pr_\w+|printk|dev_\w+)\(", driver)
    assert set(printed) - {"pr_fmt"} == {"pr_err", "pr_debug"}, printed
    init = re.search(r"^static int __init shrinkmem_init\(void\)\n\{\n(.*?)^\}$", driver, re.M | re.S)
    assert init and "pr_debug" not in init.group(1)
    # What the suite checks instead: modinfo's "intree: Y" comes from the module being built in the tree.
    assert "MODULE_LICENSE(\"GPL\")" in driver and "MODULE_DESCRIPTION(" in driver and "MODULE_AUTHOR(" in driver


# ---------------------------------------------------------------- the uapi: in-tree against out-of-tree


def test_in_tree_header_has_no_abi_version_and_says_how_it_extends() -> None:
    header = patch_creating(IN_TREE_HEADER).new_file(IN_TREE_HEADER)
    assert "SHRINKMEM_ABI_VERSION" not in header
    assert "_IOC_SIZE" in header and "EINVAL" in header and "reserved" in header
    assert "no version that changes with the meaning of a field" in " ".join(header.replace(" *", " ").split())
    cover = " ".join(series()[0].message.split())
    assert "no version that changes with the meaning of a field" in cover and "_IOC_SIZE" in cover
    # The driver reports what the out-of-tree module does, which its user space checks.
    driver = patch_creating(IN_TREE_DRIVER).new_file(IN_TREE_DRIVER)
    version = re.search(r"^#define SHRINKMEM_ABI_VERSION (\d+)$", driver, re.M)
    assert version and int(version.group(1)) == kmod_vm.header_abi_version()


def header_defines(text: str) -> Dict[str, str]:
    return dict(re.findall(r"^#define\s+(SHRINKMEM_\w+)\s+(.+?)\s*(?:/\*.*)?$", text, re.M))


def header_structs(text: str) -> Dict[str, List[Tuple[str, str]]]:
    return {
        name: re.findall(r"^\s*(__[us]\d+)\s+(\w+);", body, re.M)
        for name, body in re.findall(r"^struct (\w+) \{\n(.*?)^\};", text, re.M | re.S)
    }


def test_in_tree_header_text_matches_the_module_header() -> None:
    in_tree = patch_creating(IN_TREE_HEADER).new_file(IN_TREE_HEADER)
    module = OUT_OF_TREE_HEADER.read_text()
    assert header_structs(in_tree) == header_structs(module)
    ours, theirs = header_defines(in_tree), header_defines(module)
    ioctls = [name for name in theirs if name.startswith("SHRINKMEM_IOC_")]
    assert ioctls and {name: ours.get(name) for name in ioctls} == {name: theirs[name] for name in ioctls}
    shared = set(ours) & set(theirs)
    assert {name: ours[name] for name in shared} == {name: theirs[name] for name in shared}
    # All of the in-tree header's constants are the module's; it only leaves out the ABI
    # version and the kprobe method.
    assert set(ours) <= set(theirs)
    assert set(theirs) - set(ours) == {"SHRINKMEM_ABI_VERSION", "SHRINKMEM_METHOD_KPROBE"}


def compiled_view(header: Path, *cflags: str) -> Dict[str, int]:
    """sizeof, offsetof, ioctl numbers and constants as a C compiler sees them through a header.

    Read from the assembly of constants (gcc -S), so that -m32 needs no 32-bit C library.
    """
    text = header.read_text()
    exprs: Dict[str, str] = {}
    for name, fields in sorted(header_structs(text).items()):
        exprs[f"sizeof {name}"] = f"sizeof(struct {name})"
        for _, field in fields:
            exprs[f"offsetof {name}.{field}"] = f"__builtin_offsetof(struct {name}, {field})"
    for name in sorted(header_defines(text)):
        exprs[name] = name
    keys = list(exprs)
    source = "\n".join(
        [f'#include "{header}"']
        + [f"const unsigned int view_{i} = (unsigned int)({exprs[key]});" for i, key in enumerate(keys)]
    )
    result = subprocess.run(
        [
            "gcc",
            *cflags,
            "-std=c11",
            "-Wall",
            "-Werror",
            "-S",
            "-o",
            "-",
            "-idirafter",
            "/usr/include/x86_64-linux-gnu",
            "-x",
            "c",
            "-",
        ],
        input=source + "\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    # A constant is ".long N", or ".zero 4" when it is 0.
    found = re.findall(r"^view_(\d+):\n\s*\.(?:long\s+(-?\d+)|zero\s+4)$", result.stdout, re.M)
    values = {int(i): int(v or 0) for i, v in found}
    assert sorted(values) == list(range(len(keys))), result.stdout
    return {key: values[i] & 0xFFFFFFFF for i, key in enumerate(keys)}


@pytest.mark.parametrize("cflags", [[], ["-m32"]], ids=["host", "i386"])
def test_in_tree_and_module_headers_compile_to_the_same_abi(cflags: List[str]) -> None:
    """Same sizes, offsets, ioctl numbers and constants, 64-bit and 32-bit (compat_ptr_ioctl)."""
    in_tree = vm.VM_ROOT / "upstream-series" / "in-tree-uapi" / "shrinkmem.h"
    in_tree.parent.mkdir(parents=True, exist_ok=True)
    in_tree.write_text(patch_creating(IN_TREE_HEADER).new_file(IN_TREE_HEADER))
    ours = compiled_view(in_tree, *cflags)
    theirs = compiled_view(OUT_OF_TREE_HEADER, *cflags)
    assert "SHRINKMEM_IOC_RECLAIM" in ours and "sizeof shrinkmem_info" in ours
    assert {key: theirs.get(key) for key in ours} == ours


# ---------------------------------------------------------------- the cover letter quotes docs/outcome.md


def markdown_tables(text: str) -> List[List[List[str]]]:
    """Each table's rows (header row first, separator dropped) as lists of cells."""
    tables: List[List[List[str]]] = []
    current: List[List[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def reclaim_safety_tables() -> Tuple[List[List[str]], List[List[str]]]:
    parts = OUTCOME.read_text().split("<!-- reclaim-safety -->")
    assert len(parts) == 3, f"{OUTCOME}: the reclaim-safety tables are not between two markers"
    summary, rounds = markdown_tables(parts[1])
    return summary, rounds


def column(table: List[List[str]], prefix: str) -> int:
    found = [i for i, name in enumerate(table[0]) if name.startswith(prefix)]
    assert len(found) == 1, f"docs/outcome.md: no single column starting {prefix!r} in {table[0]}"
    return found[0]


def cover_text() -> str:
    return series()[0].message


def test_cover_letter_quotes_each_row_of_the_reclaim_safety_summary() -> None:
    summary, _ = reclaim_safety_tables()
    quoted = [
        column(summary, name)
        for name in (
            "kernel",
            "load",
            "backend",
            "requests",
            "median time",
            "median pgsteal",
            "samples below min",
            "nearest min",
            "allocstall",
            "median p99 fault",
        )
    ]
    cover_rows = [line.split() for line in cover_text().splitlines()]
    assert len(summary) > 1
    for row in summary[1:]:
        tokens = [token for i in quoted for token in row[i].split()]
        assert tokens in cover_rows, f"the cover letter has no line quoting docs/outcome.md's row {row}"


def test_cover_letter_quotes_the_reclaim_safety_conclusions() -> None:
    summary, rounds = reclaim_safety_tables()
    cover = " ".join(cover_text().split())
    requests = sum(int(row[column(summary, "requests")]) for row in summary[1:])
    assert f"in {requests} requests" in cover
    if all(row[column(summary, "OOM")] == row[column(summary, "alloc failures")] == "0" for row in summary[1:]):
        assert "No allocation failure and no OOM kill" in cover
    # The worst request of each backend under min: samples below it during the request, deepest dip.
    during = column(rounds, "samples below min")
    dip = column(rounds, "deepest dip")
    backend = column(rounds, "backend")
    for name in ("shrinkmem", "memory_reclaim"):
        mine = [row for row in rounds[1:] if row[backend] == name]
        samples = max(int(row[during].split("/")[1].split()[0]) for row in mine)
        deepest = max(int(row[dip]) for row in mine)
        assert f"{samples} samples below min, at most {deepest} pages under" in cover or (
            f"{samples} samples, at most {deepest} pages under" in cover
        ), (name, samples, deepest)
    # Collateral reclaim: shrinkmem's median pgsteal over memory.reclaim's, per kernel and load.
    pgsteal = column(summary, "median pgsteal")
    by_pair: Dict[Tuple[str, str], Dict[str, int]] = {}
    for row in summary[1:]:
        by_pair.setdefault((row[0], row[1]), {})[row[2]] = int(row[pgsteal])
    ratios = [pair["shrinkmem"] / pair["memory_reclaim"] for pair in by_pair.values()]
    assert f"median pgsteal {min(ratios):.1f} to {max(ratios):.1f} times memory.reclaim's" in cover
    assert statistics.median(ratios) > 1  # what the cover letter's conclusion rests on
    # The doc's verdict on the default order is the cover letter's too, and the daemon's default.
    from shrinkd.actions import registry

    order = f"[{', '.join(registry.RECLAIM_NAMES)}]"
    outcome = " ".join(OUTCOME.read_text().split())
    assert f"`{order}`" in outcome
    assert f"reclaim.prefer: {order}" in cover


# ---------------------------------------------------------------- checkpatch and applying to 6.1


@pytest.mark.parametrize("name", [path.name for path in testkernels.series_patches()])
def test_checkpatch_strict_is_clean(name: str) -> None:
    source = kmod_vm.linux_source()
    # checkpatch reads the tree's typo list from beside itself (scripts/spelling.txt). The patch
    # goes by its absolute path: given a path that `git ls-files` prints back, as a file of this
    # repository named relative to its top, checkpatch would check it as a source file, not a patch.
    assert (source / "scripts" / "spelling.txt").is_file()
    result = subprocess.run(
        [
            "perl",
            str(source / "scripts" / "checkpatch.pl"),
            "--no-tree",
            "--strict",
            "--show-types",
            str(SERIES_DIR / name),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"total: 0 errors, 0 warnings, 0 checks, \d+ lines checked", result.stdout), result.stdout


def test_checkpatch_catches_a_style_error_in_a_patch() -> None:
    """The run above can fail: the driver's patch with a style error added is reported."""
    driver = SERIES_DIR / patch_creating(IN_TREE_DRIVER).path.name
    bad = vm.VM_ROOT / "upstream-series" / "bad.patch"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(driver.read_text().replace("+\tint ret;\n", "+\tint ret ;\n", 1))
    source = kmod_vm.linux_source()
    result = subprocess.run(
        ["perl", str(source / "scripts" / "checkpatch.pl"), "--no-tree", "--strict", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "space prohibited before semicolon" in result.stdout, result.stdout


def series_source() -> Path:
    """The files of Debian's linux-source-6.1 that the series changes, extracted under .vm/ once per set."""
    wanted = sorted({name for patch in patches() for name in patch.touched()} - set(created()))
    root = vm.VM_ROOT / "linux-source-6.1-series"
    return kmod_vm.extract_source(root, wanted)


def created() -> List[str]:
    return [
        name
        for patch in patches()
        for name in patch.touched()
        if f"diff --git a/{name} b/{name}\nnew file mode" in patch.diff
    ]


def applied_tree(name: str) -> Path:
    """A copy of the 6.1 files the series touches, with the whole series applied, in order."""
    tree = vm.VM_ROOT / "upstream-series" / name
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(series_source(), tree, ignore=shutil.ignore_patterns(".extracted"))
    for patch in patches():
        for dry in (True, False):
            argv = ["patch", "-p1", "--forward", "--no-backup-if-mismatch", "-i", str(patch.path)]
            result = subprocess.run(argv + (["--dry-run"] if dry else []), cwd=tree, capture_output=True, text=True)
            assert result.returncode == 0, f"{patch.path.name}:\n{result.stdout}{result.stderr}"
            # Cleanly: no hunk needed an offset or fuzz.
            assert not re.search(r"offset|fuzz", result.stdout, re.I), f"{patch.path.name}:\n{result.stdout}"
    return tree


def test_series_applies_cleanly_in_order_to_linux_6_1() -> None:
    tree = applied_tree("applied")
    for name in created():
        assert (tree / name).is_file(), name
    assert "EXPORT_SYMBOL_GPL(shrink_all_memory);" in (tree / "mm" / "vmscan.c").read_text()
    maintainers = (tree / "MAINTAINERS").read_text()
    entry = re.search(r"^SHRINKMEM DRIVER\n((?:[A-Z]:\t.*\n)+)", maintainers, re.M)
    assert entry, "MAINTAINERS: no SHRINKMEM DRIVER entry"
    assert sorted(re.findall(r"^F:\t(.*)$", entry.group(1), re.M)) == sorted(created())
    # Sphinx finds the new page: it is in the toctree of its directory's index.
    for name in created():
        if name.endswith(".rst"):
            index = (tree / name).parent / "index.rst"
            assert re.search(rf"^   {re.escape(Path(name).stem)}$", index.read_text(), re.M), f"{index}: no {name}"
    ioctls = (tree / "Documentation" / "userspace-api" / "ioctl" / "ioctl-number.rst").read_text()
    magic = header_defines((tree / IN_TREE_HEADER).read_text())["SHRINKMEM_IOC_MAGIC"]
    entries = re.findall(rf"^{re.escape(magic)}\s+(\S+)\s+(\S+)", ioctls, re.M)
    assert entries == [("00-1F", "uapi/linux/shrinkmem.h")], entries


def test_kernel_doc_is_clean_on_the_new_files() -> None:
    tree = applied_tree("kernel-doc")
    for name in created():
        if name.endswith((".c", ".h")):
            result = subprocess.run(
                ["perl", str(kmod_vm.linux_source() / "scripts" / "kernel-doc"), "-none", "-Werror", str(tree / name)],
                capture_output=True,
                text=True,
            )
            assert result.returncode == 0 and "warning" not in result.stderr.lower(), name + result.stderr


# ---------------------------------------------------------------- built against a test kernel


@pytest.mark.parametrize("target", kmod_vm.SUITE_KERNELS)
def test_driver_builds_from_the_series_against_the_test_kernel(target: str) -> None:
    """The series' driver, with its Makefile line and header, built W=1 against kcfi-debug-export.

    That kernel is built from the shared 6.1 tree of tests/testkernels.py with the export
    patch, which adds the same line as the series' first patch (checked above); the build
    takes drivers/misc's Makefile line and the uapi header from the applied series.
    """
    tree = applied_tree("driver-build")
    work = vm.VM_ROOT / "upstream-series" / f"driver-{target}"
    if work.exists():
        shutil.rmtree(work)
    (work / "include" / "linux").mkdir(parents=True)
    shutil.copy(tree / IN_TREE_DRIVER, work / "shrinkmem.c")
    shutil.copy(tree / IN_TREE_HEADER, work / "include" / "linux" / "shrinkmem.h")
    line = re.search(r"^obj-\$\(CONFIG_SHRINKMEM\).*$", (tree / "drivers" / "misc" / "Makefile").read_text(), re.M)
    assert line
    (work / "Kbuild").write_text(line.group(0) + "\nccflags-y += -I$(src)/include\n")
    kdir = kmod_vm.kdir_of(target)
    assert kmod_vm.exports_shrink_all_memory(kdir)
    result = subprocess.run(
        [
            "nice",
            "-n",
            "10",
            "make",
            "-C",
            str(kdir),
            f"M={work}",
            "CONFIG_SHRINKMEM=m",
            "W=1",
            *kmod_vm.make_vars_of(target),
            "modules",
        ],
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert kmod_vm.compiler_diagnostics(output) == [], output
    assert "WARNING" not in output, output  # modpost: every symbol resolved
    symbols = kmod_vm.undefined_symbols(work / "shrinkmem.ko")
    assert "shrink_all_memory" in symbols and "register_kprobe" not in symbols


@pytest.mark.parametrize("target", kmod_vm.IN_TREE_KERNELS)
def test_the_series_is_applied_and_its_driver_built_in_the_test_kernel_tree(target: str) -> None:
    """upstream-6.1: the whole series as it is now, CONFIG_SHRINKMEM=m on CONFIG_HIBERNATION, the driver built
    with the kernel (no warning from any file the series touches) and linked to the export, no kprobe."""
    kernel = kmod_vm.built_kernel(target)
    assert kernel.info["series"] == [patch.path.name for patch in patches()]
    config = kernel.config
    assert config["CONFIG_HIBERNATION"] == "y" and config["CONFIG_SHRINKMEM"] == "m"
    assert kmod_vm.exports_shrink_all_memory(kernel.build_dir)
    log = (kernel.dir / "build.log").read_text(errors="replace")
    assert re.search(r"^\s+CC \[M\]\s+drivers/misc/shrinkmem\.o$", log, re.M), "the tree's build never compiled the driver"
    touched = sorted({name for patch in patches() for name in patch.touched()})
    warnings = [line for line in kmod_vm.compiler_diagnostics(log) if any(name in line for name in touched)]
    assert warnings == [], "\n".join(warnings)
    ko = kernel.kept_module("shrinkmem.ko")
    symbols = kmod_vm.undefined_symbols(ko)
    assert "shrink_all_memory" in symbols and "register_kprobe" not in symbols
    modinfo = subprocess.run(["modinfo", str(ko)], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"^(\w+):[ \t]*(.*)$", modinfo, re.M))
    assert fields["intree"] == "Y" and fields["vermagic"].split()[0] == kernel.release, modinfo
    assert re.findall(r"^parm:\s+(\w+):", modinfo, re.M) == ["max_mb", "chunk_mb"], modinfo
