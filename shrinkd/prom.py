"""Metrics for fleets: a Prometheus textfile for node_exporter's textfile collector.

Fed by the daemon's polls and events (through shrinkd.outputs), written whole
and atomically (shrinkd.safefile) when something changed, at most once every
`prometheus.interval` seconds, and when the daemon stops. The names follow
Prometheus' conventions (base units, `_total` for counters, `_seconds`,
`_bytes`); docs/tools.md lists them:

  shrinkd_unusable_index{node,zone,order}       gauge, 0 to 1 (the kernel's index)
  shrinkd_extfrag_index{node,zone,order}        gauge, -1 or 0 to 1 (the kernel's index)
  shrinkd_free_blocks{node,zone,order}          gauge (/proc/buddyinfo)
  shrinkd_free_pages{node,zone}                 gauge
  shrinkd_polls_total                           counter
  shrinkd_events_total{event}                   counter, every journal event by kind
  shrinkd_actions_total{action,backend}         counter, compactions and reclaims run
  shrinkd_action_failures_total{action}         counter
  shrinkd_reclaimed_bytes_total{backend}        counter
  shrinkd_action_duration_seconds{action}       histogram
  shrinkd_last_poll_timestamp_seconds           gauge (unix time)
  shrinkd_start_time_seconds                    gauge (unix time)

Counters start again from 0 when the daemon starts (Prometheus' rate() and
increase() handle such resets).
"""

from __future__ import annotations

import os

from . import __version__, metrics
from .safefile import SafeDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Mapping, Optional, Tuple

    from .view import Observation

# Upper bounds of the duration histogram's buckets, in seconds.
BUCKETS = (0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 30.0)


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{name}="{_label(value)}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Textfile:
    """The metrics, and the file they are written to."""

    def __init__(self, path: str, interval: float, page_size: int, wall: Callable[[], float]) -> None:
        self.move(path)
        self.interval = interval
        self.page_size = page_size
        self.wall = wall
        self.started = wall()
        self.obs: Optional[Observation] = None
        self.polled_at = 0.0
        self.polls = 0
        self.events: Dict[str, int] = {}
        self.actions: Dict[Tuple[str, str], int] = {}
        self.failures: Dict[str, int] = {}
        self.reclaimed: Dict[str, int] = {}
        self.durations: Dict[str, List[float]] = {}  # per action: counts per bucket, +Inf, sum
        self.changed = True
        self.last_write = float("-inf")

    def move(self, path: str) -> None:
        self.directory, self.name = os.path.split(os.path.abspath(path))
        self.path = os.path.join(self.directory, self.name)
        self.changed = True

    def poll(self, now: float, obs: Observation) -> None:
        self.obs = obs
        self.polls += 1
        self.polled_at = self.wall()
        self.changed = True

    def event(self, kind: str, fields: Mapping[str, object]) -> None:
        self.events[kind] = self.events.get(kind, 0) + 1
        self.changed = True
        action = str(fields.get("action") or "")
        if kind == "action_failed":
            self.failures[action] = self.failures.get(action, 0) + 1
        if kind not in ("compacted", "reclaimed") or fields.get("dry_run"):
            return
        backend = str(fields.get("backend") or "unknown")
        key = (action, backend)
        self.actions[key] = self.actions.get(key, 0) + 1
        pages = fields.get("pages_reclaimed")
        if isinstance(pages, int) and pages > 0:
            self.reclaimed[backend] = self.reclaimed.get(backend, 0) + pages * self.page_size
        try:
            seconds = float(str(fields.get("duration_ms"))) / 1000
        except ValueError:
            return
        counts = self.durations.setdefault(action, [0.0] * (len(BUCKETS) + 2))
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[index] += 1
        counts[len(BUCKETS)] += 1
        counts[len(BUCKETS) + 1] += seconds

    def due(self, now: float) -> bool:
        return self.changed and now - self.last_write >= self.interval

    def render(self) -> str:
        out: List[str] = []

        def family(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")

        obs = self.obs
        if obs is not None:
            family("shrinkd_unusable_index", "gauge", "Unusable free space index of a zone at an order, 0 to 1 (debugfs extfrag/unusable_index).")
            for zone in obs.zones.values():
                for order in range(len(zone.free)):
                    index = metrics.unusable_index(zone.free, order) / 1000
                    out.append(f"shrinkd_unusable_index{_labels(node=zone.node, zone=zone.zone, order=order)} {_number(index)}\n")
            family(
                "shrinkd_extfrag_index",
                "gauge",
                "Fragmentation index of a zone at an order: toward 0 a failure would be for lack of memory, toward 1 "
                "for fragmentation; -1 when an allocation would succeed (debugfs extfrag/extfrag_index).",
            )
            for zone in obs.zones.values():
                for order in range(len(zone.free)):
                    index = metrics.extfrag_index(zone.free, order) / 1000
                    out.append(f"shrinkd_extfrag_index{_labels(node=zone.node, zone=zone.zone, order=order)} {_number(index)}\n")
            family("shrinkd_free_blocks", "gauge", "Free blocks of each order in a zone (/proc/buddyinfo).")
            for zone in obs.zones.values():
                for order, count in enumerate(zone.free):
                    out.append(f"shrinkd_free_blocks{_labels(node=zone.node, zone=zone.zone, order=order)} {count}\n")
            family("shrinkd_free_pages", "gauge", "Free pages of a zone (the kernel's counter, as the watermarks are checked).")
            for zone in obs.zones.values():
                out.append(f"shrinkd_free_pages{_labels(node=zone.node, zone=zone.zone)} {zone.free_pages}\n")
            family("shrinkd_last_poll_timestamp_seconds", "gauge", "When shrinkd last read the zones (unix time).")
            out.append(f"shrinkd_last_poll_timestamp_seconds {_number(round(self.polled_at, 3))}\n")
        family("shrinkd_polls_total", "counter", "Polls since shrinkd started.")
        out.append(f"shrinkd_polls_total {self.polls}\n")
        family("shrinkd_events_total", "counter", "Events logged to the journal, by kind (docs/events.md).")
        for kind, count in sorted(self.events.items()):
            out.append(f"shrinkd_events_total{_labels(event=kind)} {count}\n")
        family("shrinkd_actions_total", "counter", "Compactions and reclaims run, by backend.")
        for (action, backend), count in sorted(self.actions.items()):
            out.append(f"shrinkd_actions_total{_labels(action=action, backend=backend)} {count}\n")
        family("shrinkd_action_failures_total", "counter", "Actions the kernel refused.")
        for action, count in sorted(self.failures.items()):
            out.append(f"shrinkd_action_failures_total{_labels(action=action)} {count}\n")
        family("shrinkd_reclaimed_bytes_total", "counter", "Bytes reclaimed, as the backend or /proc/vmstat counted them.")
        for backend, count in sorted(self.reclaimed.items()):
            out.append(f"shrinkd_reclaimed_bytes_total{_labels(backend=backend)} {count}\n")
        family("shrinkd_action_duration_seconds", "histogram", "How long compactions and reclaims took.")
        for action, counts in sorted(self.durations.items()):
            for index, bound in enumerate(BUCKETS):
                out.append(f"shrinkd_action_duration_seconds_bucket{_labels(action=action, le=repr(float(bound)))} {_number(counts[index])}\n")
            total = counts[len(BUCKETS)]
            out.append(f'shrinkd_action_duration_seconds_bucket{_labels(action=action, le="+Inf")} {_number(total)}\n')
            out.append(f"shrinkd_action_duration_seconds_sum{_labels(action=action)} {_number(round(counts[-1], 6))}\n")
            out.append(f"shrinkd_action_duration_seconds_count{_labels(action=action)} {_number(total)}\n")
        family("shrinkd_start_time_seconds", "gauge", "When shrinkd started (unix time).")
        out.append(f"shrinkd_start_time_seconds {_number(round(self.started, 3))}\n")
        family("shrinkd_build_info", "gauge", "shrinkd's version, always 1.")
        out.append(f"shrinkd_build_info{_labels(version=__version__)} 1\n")
        return "".join(out)

    def write(self, now: float) -> None:
        """Write the file now (raises OutputError)."""
        self.last_write = now
        self.changed = False
        with SafeDir(self.directory) as folder:
            folder.replace(self.name, self.render().encode("utf-8"))
