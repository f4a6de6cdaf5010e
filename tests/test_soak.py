"""A month in minutes, shortened for CI: the real daemon loop on a scripted fake kernel
(tests/soak.py; bench/soak.py runs a million polls). Everything the script does happens
in the first 3,000 polls (warm-up: the shrinkmem client is imported when the module first
appears); from there to the end memory, descriptors and objects stay flat, every event
arrives in the journal and adds up with what the script and the fake kernel counted, and
no exception escapes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

from shrinkd import events

from .soak import Soak

REPO = Path(__file__).resolve().parent.parent
WARM_UP = 3000
POLLS = 9000
# Every kind of change, several times over, within the warm-up and again after it.
SCRIPT = {
    "module_every": 500,
    "reload_every": 400,
    "failing_every": 700,
    "failing_for": 100,
    "malformed_every": 300,
    "failure_every": 700,
}


def run_soak(root: Path, polls: int, checkpoints: List[int]) -> Soak:
    soak = Soak(root, polls, checkpoints, **SCRIPT)
    try:
        assert soak.run() == 0
    finally:
        soak.close()
    return soak


# The month runs in a process of its own: resident memory and objects are only the loop's
# there, not those of every test that ran before in pytest's process (which moved resident
# memory by up to 1 MB and the object count by thousands).
CHILD = """
import json, sys
from pathlib import Path
from tests.test_soak import run_soak, keep_every_event
from tests.soak import growth
root, polls, checkpoints, leak = Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4] == "leak"
if leak:
    keep_every_event()
soak = run_soak(root, polls, checkpoints)
warm, *_, last = soak.figures
print(json.dumps({
    "mismatches": soak.mismatches(),
    "events": soak.listener.events,
    "notifications": soak.listener.notifications,
    "polls": [f.polls for f in soak.figures],
    "growth": growth(warm, last),
    "rows": [f.row() for f in soak.figures],
}))
"""


def keep_every_event() -> None:
    """A leak on purpose: something keeps a little of every event for ever."""
    kept: List[Any] = []
    original = events.Events.event

    def leaky(self: events.Events, kind: str, message: str, *args: Any, **fields: Any) -> None:
        kept.append((kind, message, dict(fields)))
        original(self, kind, message, *args, **fields)

    events.Events.event = leaky  # type: ignore[method-assign]


def soak_in_child(root: Path, polls: int, checkpoints: List[int], leak: bool = False) -> Dict[str, Any]:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(polls), json.dumps(checkpoints), "leak" if leak else "clean"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    found: Dict[str, Any] = json.loads(child.stdout.splitlines()[-1])
    return found


def test_a_shortened_month_is_flat_and_every_event_is_logged(tmp_path: Path) -> None:
    found = soak_in_child(tmp_path, POLLS, [WARM_UP, 6000, POLLS])
    assert found["mismatches"] == []
    counted = found["events"]
    # The script reached everything it is there for.
    for kind in (
        "reloaded",
        "reload_failed",
        "backends_changed",
        "action_failed",
        "poll_failed",
        "reclaimed",
        "allocation_failed",
    ):
        assert counted.get(kind, 0) >= 2, (kind, counted)
    assert found["notifications"].get("WATCHDOG", 0) > 0
    assert found["polls"] == [WARM_UP, 6000, POLLS]
    assert found["growth"] == [], found["rows"]


def test_the_soak_sees_a_leak(tmp_path: Path) -> None:
    """The same checks fail when something keeps a little of every event: the soak can fail."""
    found = soak_in_child(tmp_path, 5000, [1000, 5000], leak=True)
    assert found["mismatches"] == []  # the events still add up: only memory tells
    assert any(problem.startswith("Python objects") for problem in found["growth"]), found["rows"]
