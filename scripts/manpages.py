#!/usr/bin/env python3
"""Write the manual pages kept in man/: shrinkd(8) and shrinkd.yaml(5).

    python3 scripts/manpages.py            # write man/shrinkd.8 and man/shrinkd.yaml.5
    python3 scripts/manpages.py --check    # exit 1 when the kept pages differ from what this writes

shrinkd(8) is packaging/manpage.py's page, built from the command line's own argparse parser.
shrinkd.yaml(5) is docs/config.md's "Keys" part (every key, its default and meaning, and the
text between the tables) turned into roff, so neither page can drift from its source. The
date is SOURCE_DATE_EPOCH's when set, else DATE below: the pages are reproducible.
tests/test_manpages.py checks both pages against these sources and through man's own checks.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "packaging"))

DATE_EPOCH = 1796601600  # 2026-12-07, the pages' date unless SOURCE_DATE_EPOCH says otherwise
PAGES = {"shrinkd.8": "shrinkd_page", "shrinkd.yaml.5": "config_page"}


def inline(text: str) -> str:
    """Markdown's inline marks as roff: `code` bold, [text](link) as text, escapes."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", text)
    return re.sub(r"`([^`]+)`", r"\\fB\1\\fR", text)


def shrinkd_page() -> str:
    import manpage  # type: ignore[import-not-found]  # packaging/manpage.py, on sys.path above

    return str(manpage.page())


def config_page() -> str:
    from shrinkd import __version__

    date = _date()
    markdown = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    keys = markdown[markdown.index("\n## Keys\n") :]
    lines: List[str] = [
        f'.TH SHRINKD.YAML 5 "{date}" "shrinkd {__version__}" "File Formats"',
        ".SH NAME",
        "shrinkd.yaml \\- the configuration of shrinkd, the memory fragmentation daemon",
        ".SH SYNOPSIS",
        "/etc/shrinkd/shrinkd.yaml, /etc/shrinkd/conf.d/*.yaml",
        ".SH DESCRIPTION",
        "YAML read by \\fBshrinkd run\\fR at start and on SIGHUP: the files merged in name order "
        "(a later value wins; a list replaces the earlier one), the built-in defaults below every "
        "key not given. \\fBshrinkd check\\-config\\fR validates them and judges them against this "
        "system; sizes take K, M or G; times are seconds unless the key ends in _ms.",
        ".SH KEYS",
    ]
    paragraph: List[str] = []

    def flush() -> None:
        if paragraph:
            lines.extend([".PP", inline(" ".join(paragraph))])
            paragraph.clear()

    for raw in keys.splitlines()[2:]:
        line = raw.strip()
        if line.startswith("#"):
            flush()
            lines.append(".SS " + inline(line.lstrip("#").strip()).replace("\\fB", "").replace("\\fR", ""))
        elif line.startswith("|"):
            flush()
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if cells[0] in ("key", "") or set(cells[0]) <= {"-"}:
                continue
            key, default, meaning = [*cells, "", ""][:3]
            shown = f" (default: {inline(default)})" if default else ""
            lines.extend([".TP", inline(key) + shown, inline(meaning)])
        elif line.startswith("```") or not line:
            flush()
        else:
            paragraph.append(line[2:] if line.startswith("- ") else line)
    flush()
    lines += [
        ".SH FILES",
        ".TP", "\\fI/etc/shrinkd/shrinkd.yaml\\fR", "The configuration, as installed (the defaults, commented).",
        ".TP", "\\fI/etc/shrinkd/conf.d/*.yaml\\fR", "Drop\\-ins, read in name order after shrinkd.yaml.",
        ".SH SEE ALSO",
        "shrinkd(8)",
    ]
    return "\n".join(lines) + "\n"


def _date() -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", DATE_EPOCH))))


def render(name: str) -> str:
    os.environ.setdefault("SOURCE_DATE_EPOCH", str(DATE_EPOCH))
    return str(globals()[PAGES[name]]())


def main(argv: List[str]) -> int:
    stale = []
    for name in PAGES:
        path = REPO / "man" / name
        text = render(name)
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}: run python3 scripts/manpages.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
