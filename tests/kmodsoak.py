"""The shrinkmem module's soak, host side: boot a kernel (tests/vm.py), run tests/kmod/soak_guest.py
in it, and judge what it recorded. Shared by tests/test_kmod_soak_vm.py (CI) and bench/kmod_soak.py.

What must hold after the loop: every operation had its documented outcome; the module's own
counters add up to the requests that succeeded; its reference count is back to 0, its size is
what it was, and rmmod works; no slab cache grew by more than the slack below between the end
of the warm-up and the end; and the kernel log since the module was loaded holds nothing that
tests/test_kmod_vm.py's filter calls a kernel problem (warnings, lockdep, KASAN, ...).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

from tests import testkernels, vm
from tests.test_kmod_vm import BAD_KERNEL_LOG, make_data_disk

# The kernel the soak boots: with SHRINKD_TEST_KERNELS=1 the test kernel with lockdep and KASAN
# (tests/testkernels.py), so that a leak, a use after free or a locking mistake shows in its
# log; Debian's 6.1 otherwise. SHRINKD_SOAK_KERNEL names another test kernel or Debian series.
KERNEL = os.environ.get(
    "SHRINKD_SOAK_KERNEL", "kcfi-debug-export" if os.environ.get("SHRINKD_TEST_KERNELS") == "1" else "6.1"
)

GUEST_SCRIPT = """\
$PY tests/kmod/soak_guest.py --ko {ko} --out "$OUT" --iterations {iterations} --warm-up {warm_up} \\
    --data-disk /dev/vda > "$OUT/guest-log.txt" 2>&1
status=$?
tail -n 20 "$OUT/guest-log.txt"
exit $status
"""

# A slab cache may hold this many more objects at the end than after the warm-up, or this share of the
# requests made, whichever is larger. In a 6.1 guest the caches moved by at most a few dozen objects
# between the two snapshots (radix_tree_node: -52; every other cache 0 or -1); a leak of one object per
# request adds one per request: about 150 in the CI run, thousands in bench/kmod_soak.py.
SLAB_SLACK_OBJECTS = 64
SLAB_SLACK_SHARE = 0.1

# Caches that follow the guest's processes and their mappings, not the module: it allocates nothing
# itself (kmod/shrinkmem.c has no allocation) and takes no reference to a process, a file or a mapping.
# Their counts move with whatever the guest's own Python and shell map and keep: in a CI run anon_vma
# went 240 -> 351 objects between the warm-up and the end and stayed there after rmmod.
PROCESS_CACHES = frozenset(
    {"anon_vma", "anon_vma_chain", "vm_area_struct", "mm_struct", "task_struct", "pid", "cred_jar",
     "files_cache", "fs_cache", "signal_cache", "sighand_cache", "maple_node"}
)


def run(
    iterations: int, warm_up: int = 300, kernel: str = KERNEL, timeout: float = 3600
) -> Tuple[Dict[str, Any], float]:
    """Boot `kernel`, soak the module for `iterations` operations; (what the guest recorded, seconds of the run)."""
    run_dir = vm.new_run_dir("kmod-soak-")
    boot: Union[str, Path] = kernel
    if kernel in testkernels.SPECS:
        built = testkernels.ensure(kernel)
        ko = vm.build_module(run_dir, kernel, kdir=built.build_dir, make_vars=built.make_vars)
        boot = built.image
    else:
        ko = vm.build_module(run_dir, kernel)
    data = make_data_disk(run_dir, cache_mb=128)
    try:
        result = vm.run_in_vm(
            GUEST_SCRIPT.format(ko=shlex.quote(str(ko)), iterations=iterations, warm_up=warm_up),
            kernel=boot,
            memory="1G",
            cpus=2,
            disks=[data],
            append=["log_buf_len=8M"],
            out_dir=run_dir,
            timeout=timeout,
        )
    finally:
        data.unlink()
    results_file = run_dir / "results.json"
    if not results_file.exists():
        raise vm.VMError(f"the guest wrote no results (exit {result.returncode}):\n{result.output[-6000:]}")
    results: Dict[str, Any] = json.loads(results_file.read_text())
    return results, result.seconds


def slab_growth(results: Dict[str, Any]) -> List[Tuple[str, int, int]]:
    """(cache, objects after warm-up, objects at the end) for every cache that grew beyond the slack
    over both its counts before the module was loaded and after the warm-up, and was still beyond it
    after rmmod. Objects the module leaked stay allocated when it is removed, and a leak grows a cache
    past both earlier counts; the kernel's own churn recedes or started higher. On the KASAN test
    kernel (its quarantine holds freed objects for a while) kmalloc-64 and kmalloc-96 were 176 and
    66 objects up at the end and below their warm-up counts after rmmod; biovec-max, the block
    layer's, 140 up and back to 17; kmalloc-32 went 2567 before the load, 877 after the warm-up,
    1060 at the end and 1496 after rmmod."""
    loaded: Dict[str, List[int]] = results.get("before_load", {}).get("slab", {})
    warm: Dict[str, List[int]] = results["after_warm_up"]["slab"]
    after: Dict[str, List[int]] = results["at_end"]["slab"]
    removed: Dict[str, List[int]] = results.get("after_rmmod", {}).get("slab", after)
    slack = max(SLAB_SLACK_OBJECTS, int(SLAB_SLACK_SHARE * results["requests_in_soak"]))
    grown = []
    for name, counts in sorted(after.items()):
        if name in PROCESS_CACHES:
            continue
        base = max(loaded.get(name, [0])[0], warm.get(name, [0])[0])
        if counts[0] - base > slack and removed.get(name, counts)[0] - base > slack:
            grown.append((name, warm.get(name, [0])[0], counts[0]))
    return grown


def problems(results: Dict[str, Any]) -> List[str]:
    """Everything that went wrong; empty when the module came through clean."""
    if "error" in results:
        return [f"the guest failed: {results['error']}", *bad_log_lines(results)]
    found = [f"unexpected outcome: {what}" for what in results["unexpected"]]
    calls = int(results["summary_at_end"]["calls"]) - int(results["summary_loaded"]["calls"])
    if calls != results["requests"]:
        found.append(f"the module counted {calls} calls, {results['requests']} requests succeeded")
    module = results["at_end"]["module"]
    if not module or module[2] != "0":
        found.append(f"module references at the end: {module}")
    if results["coresize_at_end"] != results["coresize_loaded"]:
        found.append(f"module size {results['coresize_loaded']} -> {results['coresize_at_end']}")
    if results["rmmod"][0] != 0:
        found.append(f"rmmod failed: {results['rmmod'][1]}")
    found += [f"slab cache {name}: {a} -> {b} objects" for name, a, b in slab_growth(results)]
    return found + bad_log_lines(results)


def bad_log_lines(results: Dict[str, Any]) -> List[str]:
    return [f"kernel log: {line}" for line in results.get("kernel_log", []) if BAD_KERNEL_LOG.search(line)]


def kb(results: Dict[str, Any], when: str, key: str) -> int:
    value: int = results[when]["meminfo"][key]
    return value


def summary_table(results: Dict[str, Any]) -> str:
    """The figures a reader wants: operations, the module's counters, slab and module memory."""
    lines = []
    for operation, outcomes in sorted(results.get("outcomes", {}).items()):
        lines.append(f"  {operation:<18}" + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    end = results["summary_at_end"]
    lines.append(
        f"  module counters: calls {end['calls']}, pages requested {end['pages_requested']}, "
        f"reclaimed {end['pages_reclaimed']}"
    )
    for key in ("Slab", "SUnreclaim"):
        lines.append(
            f"  {key:<11} after warm-up {kb(results, 'after_warm_up', key):>7} kB, at end {kb(results, 'at_end', key):>7} kB, "
            f"after rmmod {kb(results, 'after_rmmod', key):>7} kB"
        )
    lines.append(
        f"  module size {results['coresize_loaded']} -> {results['coresize_at_end']} bytes, "
        f"references at end {results['at_end']['module'][2]}, rmmod exit {results['rmmod'][0]}"
    )
    lines.append(f"  kernel log since load: {len(results['kernel_log'])} lines, {len(bad_log_lines(results))} bad")
    return "\n".join(lines)


def kernel_name(kernel: str = KERNEL) -> str:
    if kernel in testkernels.SPECS:
        return f"test kernel {kernel} ({testkernels.SPECS[kernel].purpose})"
    return f"Debian {vm.kernel_release(kernel)}"


__all__ = ["KERNEL", "kernel_name", "problems", "run", "slab_growth", "summary_table"]
