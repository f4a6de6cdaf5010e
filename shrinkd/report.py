"""Pure: a Snapshot in, the `shrinkd status` document and table out.

The zones are the daemon's own view (shrinkd.view.observe), so the free pages,
watermarks and headroom a user reads are the numbers the daemon acts on.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from . import metrics
from .parse import Snapshot
from .view import observe


def build(snapshot: Snapshot, page_size: int, named: Mapping[str, Optional[int]]) -> Dict[str, Any]:
    """The `status --json` document: one entry per zone, plus the named orders, node scores and PSI.
    `named` is what each order name is on this kernel (procfs.ProcFS.named_orders)."""
    hpage = named.get("huge") or metrics.DEFAULT_HPAGE_ORDER
    zones: List[Dict[str, Any]] = []
    for zone in observe(snapshot).zones.values():
        unusable, extfrag = metrics.indexes(zone.free)
        entry: Dict[str, Any] = {
            "node": zone.node,
            "zone": zone.zone,
            "free_blocks": list(zone.free),
            "free_pages": zone.buddy_pages,
            "unusable_index": [i / 1000 for i in unusable],
            "extfrag_index": [i / 1000 for i in extfrag],
            "compaction_score": metrics.extfrag_for_order(zone.free, hpage) if hpage < len(zone.free) else None,
        }
        if zone.marks is not None:
            entry["nr_free_pages"] = zone.free_pages
            entry["watermarks"] = dict(zone.marks)
            entry["managed_pages"] = zone.managed
            entry["present_pages"] = zone.present
            entry["spanned_pages"] = zone.spanned
            entry["headroom_pages"] = zone.headroom()
        zones.append(entry)
    document: Dict[str, Any] = {
        "page_size": page_size,
        "orders": snapshot.buddyinfo.orders,
        "hpage_order": hpage,
        "named_orders": dict(named),
        "zones": zones,
    }
    if snapshot.zoneinfo is not None and hpage < snapshot.buddyinfo.orders:
        scores = metrics.node_compaction_scores(snapshot.buddyinfo, snapshot.zoneinfo, hpage)
        document["nodes"] = [{"node": node, "compaction_score": score} for node, score in sorted(scores.items())]
    if snapshot.pressure is not None:
        psi: Dict[str, Optional[Dict[str, float]]] = {"some": None, "full": None}
        for kind in ("some", "full"):
            line = getattr(snapshot.pressure, kind)
            if line is not None:
                psi[kind] = {"avg10": line.avg10, "avg60": line.avg60, "avg300": line.avg300, "total": line.total}
        document["psi"] = psi
    return document


def render(document: Dict[str, Any]) -> str:
    """The human table: one block per node and zone."""
    page_size = document["page_size"]
    hpage = document["hpage_order"]
    lines: List[str] = []
    psi = document.get("psi")
    if psi is not None:
        some, full = psi["some"], psi["full"]
        full_text = f"{full['avg10']:.2f}%" if full else "n/a"
        lines.append(f"PSI memory avg10: some {some['avg10']:.2f}%, full {full_text}")
    else:
        lines.append("PSI memory: not available")
    named = ", ".join(f"{name} {'unknown' if order is None else order}" for name, order in document["named_orders"].items())
    lines.append(f"Named orders: {named}")
    huge = document.get("huge")
    if huge is not None:
        lines.append(huge_text(huge["order"], huge["from"]) + ("" if huge["order"] is not None else f"; scores at order {hpage}"))
    reclaim = document.get("reclaim")
    if reclaim is not None:
        lines.append(f"Reclaim backends: {reclaim['have']} ({reclaim['from']})")
        lines += [f"  {entry['name']}: {entry['why']}" for entry in reclaim["backends"] if entry["why"] is not None]
    for node in document.get("nodes", []):
        lines.append(f"Node {node['node']}: compaction score {node['compaction_score']} (order {hpage})")
    width = 7
    daemon = document.get("daemon")
    if daemon is not None:
        lines += _daemon_lines(daemon)
    for zone in document["zones"]:
        lines.append("")
        free = zone["free_pages"]
        header = f"Node {zone['node']}, zone {zone['zone']}: free {free} pages ({metrics.format_mib(free * page_size)})"
        marks = zone.get("watermarks")
        if marks is not None:
            header += (
                f", watermarks min/low/high {marks['min']}/{marks['low']}/{marks['high']}"
                f" against {zone['nr_free_pages']} free (NR_FREE_PAGES), headroom over high {zone['headroom_pages']['high']:+d}"
            )
        lines.append(header)
        orders = range(len(zone["free_blocks"]))
        lines.append("  order    " + "".join(f"{o:>{width}}" for o in orders))
        lines.append("  free     " + "".join(f"{n:>{width}}" for n in zone["free_blocks"]))
        lines.append("  unusable " + "".join(f"{v:>{width}.3f}" for v in zone["unusable_index"]))
        lines.append("  extfrag  " + "".join(f"{v:>{width}.3f}" for v in zone["extfrag_index"]))
        notable = [o for o in (metrics.COSTLY_ORDER, hpage) if o < len(zone["free_blocks"])]
        if notable:
            lines.append(
                "  at "
                + ", ".join(
                    f"order {o}: unusable {zone['unusable_index'][o]:.3f}, extfrag {zone['extfrag_index'][o]:.3f}"
                    for o in notable
                )
            )
    return "\n".join(lines) + "\n"


def huge_text(order: Optional[int], origin: str) -> str:
    """What the order name `huge` stands for here and where that came from (procfs.ProcFS.huge_order):
    "huge = order 9 (hugetlb 2048 kB)", or "huge = unknown: why"."""
    return f"huge = order {order} ({origin})" if order is not None else f"huge = unknown: {origin}"


def _daemon_lines(daemon: Dict[str, Any]) -> List[str]:
    """The running daemon, as its state file says (events.state_file)."""
    wakes = daemon["wakes_per_minute"]
    causes = ", ".join(f"{why} {rate:.1f}" for why, rate in sorted(wakes.items(), key=lambda item: -item[1]))
    lines = [
        "",
        f"Daemon: pid {daemon['pid']}, up {daemon['uptime_s'] / 60:.0f} min, {metrics.count(daemon['polls'], 'poll')}"
        + (" (dry run)" if daemon["dry_run"] else ""),
        f"  wakes {sum(wakes.values()):.1f}/min" + (f" ({causes})" if causes else ""),
        f"  last action: {daemon['last_action']}",
    ]
    for condition in daemon["conditions"]:
        state = "HOLDS" if condition["active"] else f"{condition['of_trigger'] * 100:.0f}% of trigger"
        lines.append(f"  {condition['name']} {condition['where']}: {condition['text']} ({state})")
    return lines
