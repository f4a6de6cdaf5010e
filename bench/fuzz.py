"""Bad input at scale: every parser fed at least 100,000 generated inputs (tests/fuzzing.py).

For each target (buddyinfo, zoneinfo, vmstat whole and with picked keys, PSI,
meminfo, the pagetypeinfo head, uevent datagrams, kernel log records, the YAML
reader and schema) the generators of tests/fuzzing.py make inputs, mostly
mutations of captured kernel files, and the check allows two outcomes: a parsed
value of the right shape, or the project's documented error in one line naming
the file. For volume the generators choose from a seeded PRNG (fuzzing.Seeded):
Hypothesis draws the seeds, each seed gives --batch inputs. (tests/test_fuzz.py
runs the same generators with every choice a Hypothesis draw.) Prints, per
target, the inputs run, how many parsed and how many were refused, the CPU time
and the rate; any other outcome is a bug: the script prints the input and the
error, goes on with the next target, and exits 1.

    nice python bench/fuzz.py [--inputs N] [--batch N] [--only NAME ...] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.fuzzing import BY_NAME, ERROR, PARSED, TARGETS, Bug, Seeded, Target  # noqa: E402


class Found(Exception):
    """A bug, with the input that shows it."""


def run(target: Target, inputs: int, batch: int, random_seed: int) -> Dict[str, Any]:
    counts = {PARSED: 0, ERROR: 0}

    @seed(random_seed)
    @settings(
        max_examples=-(-inputs // batch),
        database=None,
        deadline=None,
        phases=[Phase.generate],  # a failing seed shrinks to nothing useful: the input is printed instead
        suppress_health_check=list(HealthCheck),
    )
    @given(st.integers(0, 2**64 - 1))
    def fuzz(number: int) -> None:
        chooser = Seeded(random.Random(number))
        for _ in range(batch):
            value = target.generate(chooser)
            try:
                outcome = target.check(value)
            except Exception as error:
                kind = "" if isinstance(error, Bug) else f"{type(error).__name__}: "
                raise Found(f"{kind}{error}\n  input: {value!r:.2000}") from error
            counts[outcome] += 1

    started = time.process_time()
    fuzz()
    seconds = time.process_time() - started
    total = counts[PARSED] + counts[ERROR]
    return {"inputs": total, **counts, "seconds": seconds, "rate": total / seconds if seconds else 0.0}


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs per target (default 100000)")
    parser.add_argument("--batch", type=int, default=50, help="inputs per Hypothesis-drawn seed (default 50)")
    parser.add_argument("--only", nargs="+", choices=sorted(BY_NAME), help="run only these targets")
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"), help="random seed")
    args = parser.parse_args(argv)
    targets = [BY_NAME[name] for name in args.only] if args.only else TARGETS
    print(f"fuzz: {len(targets)} targets, {args.inputs} inputs each, {args.batch} per seed, seed {args.seed}")
    print(f"{'target':<14}{'inputs':>10}{'parsed':>10}{'refused':>10}{'CPU s':>10}{'inputs/s':>10}")
    total = 0
    bugs = 0
    for target in targets:
        try:
            figures = run(target, args.inputs, args.batch, args.seed)
        except Found as error:
            bugs += 1
            print(f"{target.name:<14} BUG: {error}", flush=True)
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
