"""Bad input at scale: every parser fed at least 100,000 generated inputs (tests/fuzzing.py).

For each target (buddyinfo, zoneinfo, vmstat whole and with picked keys, PSI,
meminfo, the pagetypeinfo head, uevent datagrams, the YAML reader and schema)
Hypothesis generates inputs, mostly mutations of captured kernel files, and the
check allows two outcomes: a parsed value of the right shape, or the project's
documented error in one line naming the file. Prints, per target, the inputs
run, how many parsed and how many were refused, the time and the rate; any
other outcome is a bug: Hypothesis shrinks it, the script prints it and exits 1.

    nice python bench/fuzz.py [--examples N] [--only NAME ...] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from tests.fuzzing import BY_NAME, ERROR, PARSED, TARGETS, Target  # noqa: E402


def run(target: Target, examples: int, random_seed: int) -> Dict[str, Any]:
    counts = {PARSED: 0, ERROR: 0}

    @seed(random_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(target.strategy)
    def fuzz(value: Any) -> None:
        counts[target.check(value)] += 1

    started = time.perf_counter()
    fuzz()
    seconds = time.perf_counter() - started
    total = counts[PARSED] + counts[ERROR]
    return {"inputs": total, **counts, "seconds": seconds, "rate": total / seconds if seconds else 0.0}


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000, help="inputs per target (default 100000)")
    parser.add_argument("--only", nargs="+", choices=sorted(BY_NAME), help="run only these targets")
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"), help="random seed")
    args = parser.parse_args(argv)
    targets = [BY_NAME[name] for name in args.only] if args.only else TARGETS
    print(f"fuzz: {len(targets)} targets, {args.examples} inputs each, seed {args.seed}")
    print(f"{'target':<14}{'inputs':>10}{'parsed':>10}{'refused':>10}{'seconds':>10}{'inputs/s':>10}")
    total = 0
    bugs = 0
    for target in targets:
        try:
            figures = run(target, args.examples, args.seed)
        except Exception as error:  # Hypothesis has shrunk it and printed the input above
            bugs += 1
            print(f"{target.name:<14} BUG: {type(error).__name__}: {error}", flush=True)
            continue
        total += figures["inputs"]
        print(
            f"{target.name:<14}{figures['inputs']:>10}{figures[PARSED]:>10}{figures[ERROR]:>10}"
            f"{figures['seconds']:>10.1f}{figures['rate']:>10.0f}",
            flush=True,
        )
    if bugs:
        print(f"{bugs} of {len(targets)} targets found a bug")
        return 1
    print(f"total: {total} inputs, no outcome other than a parsed value or the documented error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
