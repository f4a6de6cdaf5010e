"""A reclaim asked in parts and measured as it goes, so that it takes no more than its size.

The kernel's reclaim interfaces take more than they are asked for: cgroup v2 memory.reclaim
on the root cgroup took 122 MiB (31,296 pages) for 64 MiB in a Debian 6.1 guest, and 77 to
140 MiB for 64 in other runs (reclaim walks every cgroup at a scan priority before it checks
what it has, and each lower priority scans twice as much). The size of a reclaim step is
already bounded by `reclaim.max_per_event` and by what is left of `reclaim.max_per_hour`
(shrinkd.policy), so a reclaim that takes no more than its size keeps both caps.

reclaim_in_steps() asks for one part at a time and measures after each what was taken
(the backend's own count, else the growth of /proc/vmstat's pgsteal_anon + pgsteal_file),
and sizes each part so that the worst overshoot seen so far cannot carry the total past
the size (next_request()):

    ask = min(size / PARTS, (size - taken) / worst)
    worst = max(ASSUMED_OVERSHOOT, the largest taken/asked of the parts so far)

It stops when the next part would be under 1/FLOOR_SHARE of the size, when the kernel says it could not reclaim all of a part (memory.reclaim's
EAGAIN), or when a part took nothing. The total exceeds the size only when the last part
overshoots by a factor r larger than `worst` (at least 2), and then by (r - worst) x ask,
which is less than (r - 2) x size / PARTS. (The kernel reclaims at least SWAP_CLUSTER_MAX,
32 pages, per call: a reclaim of fewer pages can take that many.) A part that cannot be
measured counts as `worst` times what it asked for.

A backend whose amount cannot be chosen (drop_caches: `sized` False) runs once, as asked.
"""

from __future__ import annotations

import time

from ..errors import ActionError, MissingInputError
from .result import Result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Protocol

    class Backend(Protocol):
        name: str
        sized: bool

        def run(self, size: int, node: Optional[int]) -> Result: ...


PARTS = 8  # a reclaim is asked for in at least this many parts
ASSUMED_OVERSHOOT = 2.0  # the overshoot factor assumed before (and below) what the parts measure
FLOOR_SHARE = 32  # after the first part, none smaller than size / FLOOR_SHARE


def next_request(size: int, taken: int, worst: float, page_size: int) -> int:
    """Bytes to ask for next (whole pages), or 0 to stop; `taken` bytes so far, `worst` overshoot factor."""
    room = size - taken
    if room <= 0:
        return 0
    ask = int(min(size / PARTS, room / worst)) // page_size * page_size
    if taken == 0:
        return max(ask, page_size)  # a reclaim smaller than PARTS x worst pages still asks for one
    return ask if ask >= max(size // FLOOR_SHARE, page_size) else 0


def reclaim_in_steps(
    backend: Backend, size: int, node: Optional[int], pgsteal: Callable[[], Optional[int]], page_size: int
) -> Result:
    """Reclaim at most `size` bytes through `backend` in measured parts; `pgsteal` reads the kernel's count
    of pages reclaimed (None: unknown). The Result's pages_reclaimed is the total measured, `requests` the parts.
    A failure of the first part is raised; one after it ends the reclaim with what was taken."""
    if not backend.sized:
        return backend.run(size, node)
    started = time.monotonic_ns()
    taken = 0
    worst = ASSUMED_OVERSHOOT
    requests = 0
    measured = True
    source: Optional[str] = None
    partial = False
    failures: List[str] = []
    name = backend.name
    while True:
        ask = next_request(size, taken, worst, page_size)
        if ask == 0:
            break
        before = pgsteal()
        try:
            result = backend.run(ask, node)
        except (ActionError, MissingInputError) as error:
            if requests == 0:
                raise
            failures.append(f"{backend.name}: part {requests + 1}: {error}")
            break
        requests += 1
        name = result.backend
        after = pgsteal()
        if result.pages_reclaimed is not None:
            got, source = result.pages_reclaimed * page_size, "backend"
        elif before is not None and after is not None:
            got, source = max(after - before, 0) * page_size, "vmstat"
        else:
            got, measured = int(ask * worst), False
        taken += got
        worst = max(worst, got / ask)
        if result.partial:
            partial = True
            break
        if got == 0:
            break
    return Result(
        backend=name,
        duration_ns=time.monotonic_ns() - started,
        requested=size,
        pages_reclaimed=taken // page_size if measured else None,
        partial=partial,
        failures=tuple(failures),
        requests=requests,
        pages_source=source if measured else None,
    )
