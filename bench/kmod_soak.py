"""The shrinkmem module under a long loop (tests/kmodsoak.py) in a kernel booted under QEMU.

Runs tests/kmod/soak_guest.py for --iterations operations (seeded: ioctl reclaims,
text writes, ioctl INFO and read(), refused writes and ioctls, chunk_mb changes, a
concurrent process now and then) and prints the outcomes, the module's counters, slab
and module memory after the warm-up, at the end and after rmmod, and every problem
found (the same judge as tests/test_kmod_soak_vm.py). Exits 1 on a problem.

    nice python bench/kmod_soak.py [--iterations N] [--kernel SERIES]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import kmodsoak  # noqa: E402


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000, help="operations after the warm-up (default 20000)")
    parser.add_argument("--kernel", default=kmodsoak.KERNEL, help="kernel series to boot (default %(default)s)")
    args = parser.parse_args(argv)
    print(f"kmod soak: {args.iterations} operations in {kmodsoak.kernel_name(args.kernel)}", flush=True)
    results, seconds = kmodsoak.run(args.iterations, kernel=args.kernel, timeout=6 * 3600)
    if "at_end" in results:
        print(kmodsoak.summary_table(results))
        print(f"  loop {results['seconds']:.0f} s in the guest, {seconds:.0f} s with boot")
    found = kmodsoak.problems(results)
    for problem in found:
        print(f"PROBLEM: {problem}")
    print(
        "clean: documented outcomes, counters add up, no reference or slab left, quiet kernel log"
        if not found
        else "FAILED"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
