"""`shrinkd plot`: free blocks per order over time with the actions marked, to a PNG.

From a trace (shrinkd.trace): one panel per zone, one line per order (free
blocks, log scale), a vertical line at each compaction and reclaim and a
marker where a condition triggered; with a configuration, below them one
panel per rule and index (unusable or fragmentation) it watches: the index
in each zone and order over time, computed by the daemon's own conditions
(shrinkd.policy.Policy.sources, shrinkd.metrics), with the rule's trigger
and clear levels as horizontal lines. A trace holds no configuration (only
the levels of the conditions that fired, in their events): the caller gives
one or the levels are not drawn. From the journal (shrinkd.history),
which holds no free lists, one panel of the watched value before and after
each action, per trigger. matplotlib is an optional extra (`shrinkd[plot]`,
Debian's python3-matplotlib), imported only here and without pyplot: the
figure is drawn with the Agg canvas.
"""

from __future__ import annotations

from .errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Sequence, Tuple

    from .config import Config
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


class Watched:
    """One rule's index of one kind (its condition name, "huge-page:unusable_index"), its trigger and
    clear levels, and per zone and order ("node 0 zone DMA32 order 9") its value at each poll, as the
    daemon computes it; indexes and levels as debugfs prints them (0.744, -1.0), not thousandths."""

    __slots__ = ("clear", "name", "series", "trigger")

    def __init__(self, name: str, trigger: float, clear: float) -> None:
        self.name = name
        self.trigger = trigger
        self.clear = clear
        self.series: Dict[str, List[Tuple[float, float]]] = {}  # where -> [(clock, value)]


def watched(trace: Trace, config: Config, source: str) -> Tuple[List[Watched], List[str]]:
    """Every index condition `config` sets in the trace's zones, with its value at each poll, and notes
    to print: the policy's own warnings (an order this kernel lacks), no index watched at all, and
    levels that differ from those the trace's events carry (the recording ran another configuration)."""
    from .conditions import IndexCondition
    from .config import Current
    from .metrics import format_index
    from .policy import Policy

    policy = Policy(Current(config), trace.page_size, orders=trace.orders)
    found: Dict[str, Watched] = {}
    notes: List[str] = []
    for poll in trace.polls:
        sources, notices = policy.sources(poll.obs)
        notes += [f"{source}: {notice.message}" for notice in notices if notice.kind == "warning"]
        for condition, value in sources:
            if not isinstance(condition, IndexCondition):
                continue
            level = condition.level
            entry = found.setdefault(condition.name, Watched(condition.name, level.trigger / 1000, level.clear / 1000))
            entry.series.setdefault(condition.where(), []).append((poll.t, value / 1000))
    if not found:
        notes.append(f"{source}: no rule watches an unusable or fragmentation index in the trace's zones: no levels drawn")
    for event in trace.events:
        drawn = found.get(str(event.fields.get("trigger")))
        if drawn is None or "threshold" not in event.fields:
            continue
        ours = (format_index(round(drawn.trigger * 1000)), format_index(round(drawn.clear * 1000)))
        theirs = (str(event.fields["threshold"]), str(event.fields.get("clear")))
        if ours != theirs:
            notes.append(
                f"{source}: {drawn.name}: the trace's events have trigger {theirs[0]}, clear {theirs[1]}; "
                f"the levels drawn are this configuration's ({ours[0]}, {ours[1]})"
            )
    return list(found.values()), list(dict.fromkeys(notes))


def from_trace(
    trace: Trace, width: float = 12.0, height: float = 0.0, min_pages: int = 1, indexes: Sequence[Watched] = ()
) -> Any:
    """A figure: per zone with at least `min_pages` free pages at some poll, free blocks per order; then
    per entry of `indexes` (watched()), the index over time with its trigger and clear levels."""
    polls = trace.polls
    keys = list(dict.fromkeys(key for poll in polls for key in poll.obs.zones))
    keys = [k for k in keys if max((p.obs.zones[k].free_pages for p in polls if k in p.obs.zones), default=0) >= min_pages]
    if not keys:
        raise UsageError(f"{', '.join(trace.sources)}: no zone with free pages to plot")
    panels = len(keys) + len(indexes)
    figure = _figure(width, height or 3.2 * panels + 0.8)
    axes = figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
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
        _mark(ax, trace, _on_zone(key))
    zone_axes = axes[: len(keys)]
    legend: Dict[str, Any] = {}
    for ax in zone_axes:  # the orders, and every kind of mark found in any panel
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    axes[0].legend(
        list(legend.values()), list(legend), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, labelspacing=0.25,
        ncol=2, columnspacing=0.8, handlelength=1.5,  # in two columns, as high as a panel of a tall figure
    )
    for ax, entry in zip(axes[len(keys) :], indexes):
        _index_panel(ax, trace, entry)
    axes[-1].set_xlabel("time")
    shown = "free blocks per order" + (", the rules' indexes and levels" if indexes else "")
    kernel = trace.header.get("kernel")
    figure.suptitle(f"{shown}: {', '.join(trace.sources)}" + (f" (kernel {kernel})" if kernel else ""), fontsize=11)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def _index_panel(ax: Any, trace: Trace, entry: Watched) -> None:
    """One rule's index: a line per zone and order, the trigger and clear levels, its own actions marked."""
    for where, points in entry.series.items():
        ax.plot(_dates([trace.wall(t) for t, _ in points]), [value for _, value in points], linewidth=1.4, label=where)
    # The trigger's label above its line, the clear level's below its own: they never overlap.
    for label, level, color, side in (("trigger", entry.trigger, "tab:red", 1), ("clear", entry.clear, "tab:green", -1)):
        text = f"{label} {level:g}"
        ax.axhline(level, color=color, linestyle="--", linewidth=1.0, label=text)
        ax.annotate(text, (1.0, level), xycoords=("axes fraction", "data"), xytext=(-4, 2 * side),
                    textcoords="offset points", ha="right", va="bottom" if side > 0 else "top", fontsize=8, color=color)
    _mark(ax, trace, lambda fields, kind: fields.get("trigger") == entry.name)
    lowest = min(value for points in entry.series.values() for _, value in points)
    ax.set_ylim(-1.05 if lowest < 0 else -0.05, 1.05)  # a fragmentation index is -1 while allocations succeed
    ax.set_ylabel(entry.name.split(":")[-1].replace("_", " "))
    ax.set_title(entry.name, fontsize=10, loc="left")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, labelspacing=0.25)


def _on_zone(key: Tuple[int, str]) -> Callable[[Dict[str, Any], str], bool]:
    """Actions on the zone's node (or all nodes), conditions triggered in the zone (or global ones)."""

    def shown_here(fields: Dict[str, Any], kind: str) -> bool:
        node = fields.get("node")
        if node is not None and int(node) != key[0]:
            return False
        return kind != "triggered" or fields.get("zone") in (None, key[1])

    return shown_here


def _mark(ax: Any, trace: Trace, shown_here: Callable[[Dict[str, Any], str], bool]) -> None:
    """Vertical lines at the actions and triggers `shown_here` accepts."""
    shown = set()
    for event in trace.events:
        fields = event.fields
        if (event.kind not in MARKS and event.kind != "triggered") or not shown_here(fields, event.kind):
            continue
        [when] = _dates([trace.wall(event.t)])
        if event.kind in MARKS:
            color, label = MARKS[event.kind]
            dry = fields.get("dry_run") or event.kind.startswith("would_")
            if dry:
                label += " (dry run)"
            ax.axvline(when, color=color, linestyle="--" if dry else "-", alpha=0.7,
                       label=None if label in shown else label)
            shown.add(label)
        else:
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
