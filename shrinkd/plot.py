"""`shrinkd plot`: free blocks per order over time with the actions marked, to a PNG.

From a trace (shrinkd.trace): one panel per zone, one line per order (free
blocks, log scale), a vertical line at each compaction and reclaim and a
marker where a condition triggered. From the journal (shrinkd.history),
which holds no free lists, one panel of the watched value before and after
each action, per trigger. matplotlib is an optional extra (`shrinkd[plot]`,
Debian's python3-matplotlib), imported only here and without pyplot: the
figure is drawn with the Agg canvas.
"""

from __future__ import annotations

from .errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Sequence, Tuple

    from .trace import Trace

MARKS = {
    "compacted": ("tab:blue", "compaction"),
    "reclaimed": ("tab:red", "reclaim"),
    "would_compact": ("tab:blue", "compaction"),
    "would_reclaim": ("tab:red", "reclaim"),
}


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        from .history import missing_package

        raise missing_package("shrinkd plot", "matplotlib", "python3-matplotlib", "matplotlib", error) from None
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _dates(stamps: Sequence[float]) -> List[Any]:
    import datetime

    return [datetime.datetime.fromtimestamp(stamp) for stamp in stamps]


def from_trace(trace: Trace, width: float = 12.0, height: float = 0.0, min_pages: int = 1) -> Any:
    """A figure: per zone with at least `min_pages` free pages at some poll, free blocks per order."""
    polls = trace.polls
    keys = list(dict.fromkeys(key for poll in polls for key in poll.obs.zones))
    keys = [k for k in keys if max((p.obs.zones[k].free_pages for p in polls if k in p.obs.zones), default=0) >= min_pages]
    if not keys:
        raise UsageError(f"{', '.join(trace.sources)}: no zone with free pages to plot")
    figure = _figure(width, height or 3.2 * len(keys) + 0.8)
    axes = figure.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0]
    import matplotlib

    colors = matplotlib.colormaps["viridis"]
    for ax, key in zip(axes, keys):
        rows = [(trace.wall(p.t), p.obs.zones[key].free) for p in polls if key in p.obs.zones]
        when = _dates([stamp for stamp, _ in rows])
        orders = max(len(free) for _, free in rows)
        for order in range(orders):
            counts = [free[order] if order < len(free) else 0 for _, free in rows]
            ax.plot(when, counts, color=colors(order / max(orders - 1, 1)), linewidth=1.2, label=f"order {order}")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylabel("free blocks")
        ax.set_title(f"node {key[0]}, zone {key[1]}", fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
        _mark(ax, trace, key)
    legend: Dict[str, Any] = {}
    for ax in axes:  # the orders, and every kind of mark found in any panel
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    axes[0].legend(list(legend.values()), list(legend), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axes[-1].set_xlabel("time")
    figure.suptitle(f"free blocks per order: {', '.join(trace.sources)}", fontsize=11)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def _mark(ax: Any, trace: Trace, key: Tuple[int, str]) -> None:
    """Vertical lines at the actions on this zone's node (or all nodes), markers at its triggers."""
    shown = set()
    for event in trace.events:
        fields = event.fields
        node = fields.get("node")
        if node is not None and int(node) != key[0]:
            continue
        zone = fields.get("zone")
        [when] = _dates([trace.wall(event.t)])
        if event.kind in MARKS:
            color, label = MARKS[event.kind]
            dry = fields.get("dry_run") or event.kind.startswith("would_")
            if dry:
                label += " (dry run)"
            ax.axvline(when, color=color, linestyle="--" if dry else "-", alpha=0.7,
                       label=None if label in shown else label)
            shown.add(label)
        elif event.kind == "triggered" and zone in (None, key[1]):
            ax.axvline(when, color="tab:orange", linestyle=":", alpha=0.8,
                       label=None if "triggered" in shown else "triggered")
            shown.add("triggered")


def from_journal(events: Sequence[Dict[str, Any]], width: float = 12.0, height: float = 5.0) -> Any:
    """A figure: the watched value before and after each action, per trigger, actions marked."""
    acted = [e for e in events if e["event"] in MARKS and "before" in e and e.get("time")]
    if not acted:
        raise UsageError("no compaction or reclaim with a measured value in the journal: nothing to plot")
    figure = _figure(width, height)
    ax = figure.subplots(1, 1)
    triggers = sorted({str(e.get("trigger")) for e in acted})
    for trigger in triggers:
        mine = [e for e in acted if str(e.get("trigger")) == trigger]
        when = _dates([e["time"] for e in mine])
        ax.plot(when, [float(e["before"]) for e in mine], "o", label=f"{trigger} before")
        after = [(w, float(e["after"])) for w, e in zip(when, mine) if "after" in e]
        if after:
            ax.plot([w for w, _ in after], [v for _, v in after], "x", label=f"{trigger} after")
    shown = set()
    for event in acted:
        color, label = MARKS[event["event"]]
        [when] = _dates([event["time"]])
        ax.axvline(when, color=color, alpha=0.3, label=None if label in shown else label)
        shown.add(label)
    ax.set_ylabel("watched value")
    ax.set_xlabel("time")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("shrinkd's actions from the journal", fontsize=11)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def save(figure: Any, path: str, dpi: int = 100) -> None:
    try:
        figure.savefig(path, dpi=dpi, format="png")
    except OSError as error:
        raise UsageError(f"{path}: cannot write: {error.strerror or error}") from None
