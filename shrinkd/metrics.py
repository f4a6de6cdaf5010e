"""Pure, integer-exact fragmentation metrics, as mm/vmstat.c and mm/compaction.c compute them.

Every index is an integer in thousandths (the kernel's own unit): debugfs
prints `index // 1000 . index % 1000`, so 744 is "0.744" and -1000 is "-1.000".
`free` is a zone's /proc/buddyinfo row: the count of free blocks per order.
"""

from __future__ import annotations

from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Sequence, Tuple

    from .parse import BuddyInfo, ZoneInfo

# Huge-page order proactive compaction scores at when nothing better is known
# (HPAGE_PMD_ORDER on x86_64 and arm64 with 4K pages).
DEFAULT_HPAGE_ORDER = 9
# PAGE_ALLOC_COSTLY_ORDER (include/linux/mmzone.h): above it the allocator gives up sooner.
COSTLY_ORDER = 3


class ContigInfo(Record):
    """mm/vmstat.c's struct contig_page_info for one zone and requested order."""

    __slots__ = ("blocks_suitable", "blocks_total", "free_pages")

    def __init__(self, blocks_total: int, free_pages: int, blocks_suitable: int) -> None:
        self.blocks_total = blocks_total
        self.free_pages = free_pages
        self.blocks_suitable = blocks_suitable


def contig_info(free: Sequence[int], order: int) -> ContigInfo:
    """fill_contig_page_info(): totals over every order, suitable blocks counted in units of `order`."""
    blocks_total = free_pages = blocks_suitable = 0
    for o, count in enumerate(free):
        blocks_total += count
        free_pages += count << o
        if o >= order:
            blocks_suitable += count << (o - order)
    return ContigInfo(blocks_total, free_pages, blocks_suitable)


def unusable_index(free: Sequence[int], order: int) -> int:
    """unusable_free_index(): share of free memory unusable for an allocation of `order`, 0..1000."""
    info = contig_info(free, order)
    if info.free_pages == 0:
        return 1000
    return (info.free_pages - (info.blocks_suitable << order)) * 1000 // info.free_pages


def extfrag_index(free: Sequence[int], order: int) -> int:
    """__fragmentation_index(): -1000 if an `order` allocation would succeed, else up to 1000.

    Near 0 a failure would be for lack of memory, near 1000 for fragmentation. The
    kernel's formula goes below 0 (never to -1000) when the free blocks, all smaller
    than the request, average more than half of it: one free order-9 block and a
    request of order 10 gives -500.
    """
    info = contig_info(free, order)
    if info.blocks_total == 0:
        return 0
    if info.blocks_suitable:
        return -1000
    return 1000 - (1000 + info.free_pages * 1000 // (1 << order)) // info.blocks_total


def extfrag_for_order(free: Sequence[int], order: int) -> int:
    """extfrag_for_order() in mm/vmstat.c: the unusable share scaled 0..100, 0 when nothing is free."""
    info = contig_info(free, order)
    if info.free_pages == 0:
        return 0
    return (info.free_pages - (info.blocks_suitable << order)) * 100 // info.free_pages


def free_pages(free: Sequence[int]) -> int:
    return sum(count << order for order, count in enumerate(free))


def node_compaction_scores(
    buddy: BuddyInfo, zoneinfo: Sequence[ZoneInfo], hpage_order: int = DEFAULT_HPAGE_ORDER
) -> Dict[int, int]:
    """fragmentation_score_node() for each node: zone scores at the huge-page order,
    weighted by the zone's present pages over the node's present pages + 1, summed.

    Zones with no present pages are skipped, as the kernel skips unpopulated zones.
    """
    present = {(z.node, z.zone): z.present for z in zoneinfo}
    node_present: Dict[int, int] = {}
    for z in zoneinfo:
        node_present[z.node] = node_present.get(z.node, 0) + z.present
    scores: Dict[int, int] = {}
    for zone in buddy.zones:
        zone_present = present.get((zone.node, zone.zone), 0)
        if zone_present == 0:
            continue
        weighted = zone_present * extfrag_for_order(zone.free, hpage_order) // (node_present[zone.node] + 1)
        scores[zone.node] = scores.get(zone.node, 0) + weighted
    return scores


def order_of(size: int, page_size: int) -> Optional[int]:
    """The order of a block of `size` bytes (a power of two times the page size), else None."""
    if size <= 0 or page_size <= 0 or size % page_size:
        return None
    pages = size // page_size
    return pages.bit_length() - 1 if pages & (pages - 1) == 0 else None


def page_size_of(memtotal_kb: int, managed_pages: int) -> Optional[int]:
    """The kernel's page size from /proc/meminfo's MemTotal and the zones' managed pages in
    /proc/zoneinfo: MemTotal is totalram_pages(), the sum of the zones' managed pages."""
    if managed_pages <= 0 or memtotal_kb <= 0 or memtotal_kb * 1024 % managed_pages:
        return None
    size = memtotal_kb * 1024 // managed_pages
    return size if size & (size - 1) == 0 else None


def hpage_order(hugepage_kb: Optional[int], page_size: int) -> int:
    """Order of the huge page from meminfo's Hugepagesize (kB) and the base page size."""
    if not hugepage_kb or page_size <= 0:
        return DEFAULT_HPAGE_ORDER
    pages = hugepage_kb * 1024 // page_size
    if pages <= 0 or pages & (pages - 1):
        return DEFAULT_HPAGE_ORDER
    return pages.bit_length() - 1


def format_index(index: int) -> str:
    """Print an index as debugfs does: "%d.%03d" of index / 1000 and index % 1000 in C,
    where both truncate toward zero. -1000 prints "-1.000"; a fragmentation index
    between -1000 and 0 (possible when the few free blocks are all just below the
    requested order) prints as the kernel prints it, e.g. -500 as "0.-500"."""
    quotient = abs(index) // 1000 * (1 if index >= 0 else -1)
    return f"{quotient}.{index - quotient * 1000:03d}"


def slope(points: Sequence[Tuple[float, int]]) -> float:
    """The least-squares slope of (time, count) points, per second (0 for fewer than two distinct times)."""
    count = len(points)
    if count < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / count
    mean_v = sum(v for _, v in points) / count
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def count(number: int, noun: str) -> str:
    """`1 poll`, `2 polls`: a count with its noun, plural unless it is one."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def format_mib(size: int) -> str:
    """A size in bytes as MiB with one decimal, as events and tables print it."""
    return f"{size / 1048576:.1f} MiB"


def indexes(free: Sequence[int]) -> Tuple[List[int], List[int]]:
    """(unusable index per order, fragmentation index per order) for one zone."""
    orders = range(len(free))
    return [unusable_index(free, o) for o in orders], [extfrag_index(free, o) for o in orders]
