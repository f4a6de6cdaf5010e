"""bench/idle.py --imports: the `-X importtime` lines of the daemon process only, not those of the
child that reads the configuration (it writes its imports to the same stderr)."""

from __future__ import annotations

from bench.idle import import_order, top_level_times

# As `python3 -X importtime` prints them for `shrinkd run`: the daemon's own imports, then the
# configuration child's (shrinkd.configfile with PyYAML, re, typing under it).
IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       120 |        120 | shrinkd
import time:        95 |         95 |   shrinkd.errors
import time:       210 |        210 |     shrinkd.actions.result
import time:       310 |        640 |   shrinkd.actions
import time:       400 |       1250 | shrinkd.cli
import time:       150 |        150 |     re._parser
import time:       800 |        950 |   re
import time:      2100 |       3050 | shrinkd.configfile
malformed | line
import time:        xx |         yy | shrinkd.daemon
"""
DAEMON = {"shrinkd", "shrinkd.errors", "shrinkd.actions", "shrinkd.actions.result", "shrinkd.cli"}


def test_the_table_leaves_out_the_configuration_child() -> None:
    assert top_level_times(IMPORTTIME, DAEMON) == [("shrinkd.cli", 1250), ("shrinkd", 120)]


def test_modules_come_in_import_order_packages_before_their_submodules() -> None:
    assert import_order(IMPORTTIME, DAEMON) == [
        "shrinkd", "shrinkd.errors", "shrinkd.actions", "shrinkd.actions.result", "shrinkd.cli",
    ]
