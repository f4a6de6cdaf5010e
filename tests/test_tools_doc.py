"""docs/tools.md's sample of `shrinkd status` is what the command prints today on the capture it names."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "tools.md"


def status_sample() -> Tuple[List[str], str]:
    """The `$ shrinkd status ...` block of docs/tools.md: its command's words and the output under it."""
    text = DOC.read_text()
    [block] = [part for part in text.split("```\n")[1::2] if part.startswith("$ shrinkd status ")]
    command, _, output = block.partition("\n")
    return shlex.split(command[2:]), output


def test_the_docs_status_sample_is_what_status_prints_today_on_its_capture() -> None:
    words, output = status_sample()
    assert words[:2] == ["shrinkd", "status"]
    root = Path(REPO, words[words.index("--proc-root") + 1])
    assert root.parent.parent == REPO / "tests" / "fixtures" / "kernels"  # a state captured in a real kernel
    assert (root.parent / "debugfs" / "extfrag" / "unusable_index").is_file()
    # Nothing of the machine running the test: its /sys (THP's huge-page size) is not read.
    assert Path(REPO, words[words.index("--sys-root") + 1]) == root.parent
    result = subprocess.run(
        [sys.executable, "-m", "shrinkd", *words[1:]], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == output


def test_the_sample_s_index_rows_are_the_kernel_s_own() -> None:
    """What the docs say of the sample: its unusable and extfrag rows are debugfs's at the same moment."""
    words, output = status_sample()
    capture = Path(REPO, words[words.index("--proc-root") + 1]).parent
    for name, row in (("unusable_index", "  unusable "), ("extfrag_index", "  extfrag  ")):
        kernel = [line.split()[4:] for line in (capture / "debugfs" / "extfrag" / name).read_text().splitlines()]
        shown = [line[len(row) :].split() for line in output.splitlines() if line.startswith(row)]
        assert shown == kernel
