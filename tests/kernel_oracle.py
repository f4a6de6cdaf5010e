"""Compare `shrinkd status --json` against the kernel's own debugfs extfrag files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

from shrinkd.parse import zone_header

REPO = Path(__file__).resolve().parent.parent
Key = Tuple[int, str]


def parse_debugfs_index(text: str) -> Dict[Key, List[float]]:
    """debugfs extfrag/{extfrag_index,unusable_index}: `Node N, zone NAME v v v ...`."""
    rows: Dict[Key, List[float]] = {}
    for line in text.splitlines():
        header = zone_header(line)
        if header is None:
            continue
        rows[(header[0], header[1])] = [debugfs_value(v) for v in header[2].split()]
    return rows


def debugfs_value(text: str) -> float:
    """One printed index: "%d.%03d" of the thousandths' C quotient and remainder, which
    keep their own signs ("-1.000" is -1000, "0.-500" is -500)."""
    whole, _, thousandths = text.partition(".")
    return (int(whole) * 1000 + int(thousandths)) / 1000


def status_json(proc_root: Path) -> Dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "shrinkd", "status", "--json", "--proc-root", str(proc_root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    document: Dict[str, Any] = json.loads(completed.stdout)
    return document


def mismatches(state: Path) -> List[str]:
    """Every (zone, order, index) where shrinkd and the kernel disagree; [] when all agree.

    debugfs lists populated zones only; every zone it lists must be in shrinkd's
    output with the same values at every order.
    """
    document = status_json(state / "proc")
    ours = {(z["node"], z["zone"]): z for z in document["zones"]}
    problems: List[str] = []
    for key_name, file_name in (("unusable_index", "unusable_index"), ("extfrag_index", "extfrag_index")):
        kernel = parse_debugfs_index((state / "debugfs" / "extfrag" / file_name).read_text())
        if not kernel:
            problems.append(f"{file_name}: the kernel's file lists no zones")
        for key, values in kernel.items():
            if key not in ours:
                problems.append(f"{file_name}: zone {key} missing from shrinkd's output")
                continue
            mine = ours[key][key_name]
            if len(mine) != len(values):
                problems.append(f"{file_name} {key}: {len(mine)} orders, kernel has {len(values)}")
            for order, (a, b) in enumerate(zip(mine, values)):
                if a != b:
                    problems.append(f"{file_name} {key} order {order}: shrinkd {a}, kernel {b}")
    return problems
