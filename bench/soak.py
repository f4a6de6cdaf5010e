"""A month in minutes: a million polls of the real daemon loop on a scripted fake kernel.

The loop, the script and the checks are tests/soak.py's (tests/test_soak.py runs the
same code for 9,000 polls in CI). Prints the process's resident memory, open
descriptors, Python objects (gc-tracked) and allocated blocks at each checkpoint, the
events logged against what the script and the fake kernel counted, and whether the
figures stayed flat from the end of warm-up (10,000 polls) to the end. Exits 1 when an
event is missing or extra, an exception escaped, or something grew.

    nice python bench/soak.py [--polls N]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.soak import LADDER, Figures, Soak, growth  # noqa: E402

WARM_UP = 10_000


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=1_000_000, help="polls to run (default 1000000)")
    args = parser.parse_args(argv)
    checkpoints = sorted(
        {n for n in (1_000, 5_000, WARM_UP, 50_000, 100_000, 250_000, 500_000, 750_000) if n < args.polls}
        | {args.polls}
    )
    print(f"soak: {args.polls} polls; Python {platform.python_version()}; states {', '.join(LADDER)}")
    print(Figures.HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="shrinkd-soak-") as directory:
        soak = Soak(Path(directory), args.polls, checkpoints)
        soak.progress = lambda figures: print(figures.row(), flush=True)
        started = time.perf_counter()
        try:
            code = soak.run()
        finally:
            soak.close()
        seconds = time.perf_counter() - started
    days = soak.simulated / 86400
    print(
        f"\n{args.polls} polls in {seconds:.0f} s ({args.polls / seconds:.0f} polls/s), {days:.1f} days of daemon time"
    )
    print("\nevents logged (expected, where the script fixes the number):")
    expected = soak.expected()
    for kind in sorted(set(soak.listener.events) | set(expected)):
        want = f"{expected[kind]:>9}" if kind in expected else f"{'':>9}"
        print(f"  {kind:<18}{soak.listener.events.get(kind, 0):>9}{want}")
    print(f"  {'(plain lines)':<18}{soak.listener.lines:>9}")
    notes = ", ".join(f"{key} {count}" for key, count in sorted(soak.listener.notifications.items()))
    print(f"sd_notify: {notes}")
    problems = soak.mismatches()
    if code != 0:
        problems.append(f"Daemon.run returned {code}")
    warm = next((f for f in soak.figures if f.polls >= WARM_UP), soak.figures[0])
    last = soak.figures[-1]
    if last.polls > warm.polls:
        print(
            f"\nfrom {warm.polls} to {last.polls} polls: RSS {(last.rss - warm.rss) / 1024:+.0f} KiB, "
            f"descriptors {last.fds - warm.fds:+d}, objects {last.objects - warm.objects:+d}, "
            f"blocks {last.blocks - warm.blocks:+d}"
        )
        print(
            f"ratio {last.polls}/{warm.polls} polls: RSS {last.rss / warm.rss:.3f}x, "
            f"objects {last.objects / warm.objects:.3f}x, blocks {last.blocks / warm.blocks:.3f}x"
        )
        problems += growth(warm, last)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("flat, every event logged, no exception escaped" if not problems else "FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
