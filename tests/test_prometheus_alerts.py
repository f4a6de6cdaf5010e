"""The example alerting rules (contrib/prometheus/) against Prometheus' own promtool, and against the
metrics shrinkd writes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .fakekernel import ScriptedKernel, Tree
from .test_daemon import daemon
from .test_outputs import outputs, parse

RULES = Path(__file__).resolve().parent.parent / "contrib" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    # Debian's prometheus package (scripts/setup.sh installs it).
    return subprocess.run(["promtool", *args], cwd=RULES, capture_output=True, text=True, check=False, timeout=120)


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", "shrinkd-alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = promtool("test", "rules", "shrinkd-alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_metric_the_rules_use_is_one_shrinkd_writes(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "kernel")
    folder = tmp_path / "out"
    folder.mkdir(mode=0o755)
    d, _, _ = daemon(tree, ScriptedKernel(tree.proc, {}), text=outputs(folder))
    d.start()
    try:
        d.tick()
    finally:
        d.close()
    types, _ = parse((folder / "shrinkd.prom").read_text())
    written = {name + "_total" if kind == "counter" else name for name, kind in types.items()}
    used = set(re.findall(r"\b(shrinkd_[a-z_]+)", (RULES / "shrinkd-alerts.yml").read_text()))
    assert used and used <= written, used - written
