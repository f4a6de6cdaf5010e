"""`shrinkd history`: what shrinkd did, read back from the journal.

The journal is read with systemd-python's systemd.journal.Reader (Debian's
python3-systemd), imported here only, so that no other command, and never the
daemon, loads libsystemd. Entries are those with SYSLOG_IDENTIFIER=shrinkd and
a SHRINKD_EVENT field (docs/events.md); the table shows each event with where
it happened, the action, the backend, the watched value before and after and
what was reclaimed, then the totals.
"""

from __future__ import annotations

import contextlib
import time

from .errors import MissingInputError, MissingPackageError, ShrinkdError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional, Sequence

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: Optional[float] = None) -> float:
    """A time as journalctl --since takes the common ones: "2024-05-01", "2024-05-01 12:00[:00]",
    "today", "yesterday", "-2h", "2h ago", "90m ago" (s, m, h, d, w); unix seconds."""
    now = time.time() if now is None else now
    word = text.strip().lower()
    if word in ("today", "yesterday"):
        midnight = time.mktime((*time.localtime(now)[:3], 0, 0, 0, 0, 0, -1))
        return midnight - (86400 if word == "yesterday" else 0)
    if word == "now":
        return now
    relative = word[1:] if word.startswith("-") else word[: -len("ago")].strip() if word.endswith("ago") else None
    if relative and relative[-1:] in _UNITS and relative[:-1].strip().isdigit():
        return now - int(relative[:-1]) * _UNITS[relative[-1]]
    for layout in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return time.mktime(time.strptime(text.strip(), layout))
        except ValueError:
            continue
    raise UsageError(
        f"--since: expected a date (2024-05-01), a date and time (2024-05-01 12:00), today, yesterday "
        f"or a time ago (-2h, 3d ago), got {text!r}"
    )


# Where Debian's python3-* packages put their modules: seen by the system's python3, not by a virtualenv
# made without --system-site-packages (nor by a Python built apart, such as pyenv's).
DEBIAN_PACKAGES = ("/usr/lib/python3/dist-packages",)


def missing_package(
    command: str, module: str, debian: str, pypi: str, error: ImportError, places: Sequence[str] = DEBIAN_PACKAGES
) -> ShrinkdError:
    """The one-line error for a module that cannot be imported: not installed (install it), installed
    for the system's Python but not seen by this one (a virtualenv), or installed and failing to import."""
    import os
    import sys

    if not isinstance(error, ModuleNotFoundError):
        return UsageError(f"{command}: the Python module {module} is installed but cannot be imported: {error}")
    relative = module.split(".")[0]
    found = next((os.path.join(place, relative) for place in places if os.path.isdir(os.path.join(place, relative))), None)
    if found is not None:
        return UsageError(
            f"{command} needs the Python module {module}: Debian's {debian} is installed ({found}) but this Python "
            f"({sys.executable}) does not see it: run shrinkd with the system's python3, make the virtualenv with "
            f"--system-site-packages, or install {pypi} into it (pip install {pypi})"
        )
    return MissingPackageError(command, module, debian, pypi)


def _reader(directory: Optional[str], files: Sequence[str]) -> Any:
    import importlib

    try:
        journal = importlib.import_module("systemd.journal")
    except ImportError as error:
        raise missing_package("shrinkd history", "systemd.journal", "python3-systemd", "systemd-python", error) from None
    try:
        if files:
            return journal.Reader(files=list(files))
        if directory is not None:
            return journal.Reader(path=directory)
        return journal.Reader()
    except OSError as error:
        where = ", ".join(files) if files else directory or "the system journal"
        raise MissingInputError(where, f"cannot open the journal: {error.strerror or error}") from None


def read(directory: Optional[str] = None, files: Sequence[str] = (), since: Optional[float] = None) -> List[Dict[str, Any]]:
    """shrinkd's events in the journal, oldest first, as plain dicts: time (unix seconds), event,
    message, and the SHRINKD_* fields by their lower-case names."""
    import datetime

    reader = _reader(directory, files)
    try:
        reader.add_match(SYSLOG_IDENTIFIER="shrinkd")
        if since is not None:
            reader.seek_realtime(datetime.datetime.fromtimestamp(since))
        found = []
        for entry in reader:
            kind = entry.get("SHRINKD_EVENT")
            if not kind:
                continue
            stamp = entry.get("__REALTIME_TIMESTAMP")
            if since is not None and stamp is not None and stamp.timestamp() < since:
                continue
            event: Dict[str, Any] = {
                "time": stamp.timestamp() if stamp is not None else None,
                "event": str(kind),
                "message": str(entry.get("MESSAGE", "")),
                "pid": entry.get("_PID"),
            }
            for key, value in entry.items():
                if key.startswith("SHRINKD_") and key != "SHRINKD_EVENT":
                    event[key[len("SHRINKD_") :].lower()] = value if isinstance(value, (int, float)) else str(value)
            found.append(event)
        return found
    finally:
        reader.close()


def where(event: Dict[str, Any]) -> str:
    if "zone" in event:
        text = f"node {event.get('node', '?')} {event['zone']}"
        return text + (f" order {event['order']}" if "order" in event else "")
    return str(event.get("trigger") or "")


def totals(events: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """Counts by kind; compactions and reclaims run (dry runs apart), reclaimed pages and bytes asked,
    failures, and the watched value's mean change per action where both ends are known."""
    counts: Dict[str, int] = {}
    reclaimed_pages = 0
    asked = 0
    runs = {"compacted": 0, "reclaimed": 0}
    changes: List[float] = []
    for event in events:
        kind = event["event"]
        counts[kind] = counts.get(kind, 0) + 1
        if kind in runs and str(event.get("dry_run")) != "1":
            runs[kind] += 1
            with contextlib.suppress(KeyError, ValueError):
                changes.append(float(event["after"]) - float(event["before"]))
        if kind == "reclaimed" and str(event.get("dry_run")) != "1":
            asked += int(event.get("requested_bytes") or 0)
            reclaimed_pages += int(event.get("pages_reclaimed") or 0)
    return {
        "events": counts,
        "compactions": runs["compacted"],
        "reclaims": runs["reclaimed"],
        "reclaimed_pages": reclaimed_pages,
        "reclaim_asked_bytes": asked,
        "failures": counts.get("action_failed", 0) + counts.get("poll_failed", 0) + counts.get("reload_failed", 0),
        "mean_change": sum(changes) / len(changes) if changes else None,
    }


def render(events: Sequence[Dict[str, Any]], page_size: int) -> str:
    rows = [("time", "event", "where", "action", "backend", "value", "reclaimed", "ms")]
    for event in events:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event["time"])) if event.get("time") else "?"
        value = ""
        if "before" in event and "after" in event:
            value = f"{event['before']} -> {event['after']}"
        elif "before" in event:
            value = f"{event['before']} (dry run)"
        elif "value" in event:
            value = str(event["value"])
        reclaimed = ""
        if event.get("pages_reclaimed") not in (None, ""):
            reclaimed = f"{int(event['pages_reclaimed']) * page_size / 1048576:.1f} MiB"
        elif event["event"] in ("reclaimed", "would_reclaim"):
            reclaimed = f"({int(event.get('requested_bytes') or 0) / 1048576:.1f} MiB asked)"
        rows.append(
            (
                stamp,
                event["event"],
                where(event),
                str(event.get("action") or ""),
                str(event.get("backend") or ""),
                value,
                reclaimed,
                str(event.get("duration_ms") or ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    summary = totals(events)
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(summary["events"].items()))
    lines.append("")
    lines.append(f"{len(events)} events: {kinds}")
    change = summary["mean_change"]
    lines.append(
        f"actions run: {summary['compactions']} compactions, {summary['reclaims']} reclaims "
        f"({summary['reclaimed_pages'] * page_size / 1048576:.1f} MiB reclaimed of "
        f"{summary['reclaim_asked_bytes'] / 1048576:.1f} MiB asked); failures: {summary['failures']}"
        + (f"; watched value changed by {change:+.3f} per action on average" if change is not None else "")
    )
    return "\n".join(lines) + "\n"
