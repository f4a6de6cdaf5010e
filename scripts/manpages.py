#!/usr/bin/env python3
"""Write the manual pages kept in man/: shrinkd(8), shrinkd.yaml(5) and shrinkmem(4).

    python3 scripts/manpages.py            # write man/shrinkd.8, man/shrinkd.yaml.5 and man/shrinkmem.4
    python3 scripts/manpages.py --check    # exit 1 when the kept pages differ from what this writes

shrinkd(8) is packaging/manpage.py's page, built from the command line's own argparse parser.
shrinkd.yaml(5) is docs/config.md's "Keys" part (every key, its default and meaning, and the
text between the tables) turned into roff. shrinkmem(4), the module's device interface, is
kmod/README.md's parts on using the device (text writes, read(), the module parameters, errors,
kernels it refuses) with the ioctls, structures and constants of kmod/uapi/shrinkmem.h and
their kernel-doc comments. So no page can drift from its source. The
date is SOURCE_DATE_EPOCH's when set, else DATE below: the pages are reproducible.
tests/test_manpages.py checks the pages against these sources and through man's own checks.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "packaging"))

DATE_EPOCH = 1796601600  # 2026-12-07, the pages' date unless SOURCE_DATE_EPOCH says otherwise
PAGES = {"shrinkd.8": "shrinkd_page", "shrinkd.yaml.5": "config_page", "shrinkmem.4": "shrinkmem_page"}
UAPI = REPO / "kmod" / "uapi" / "shrinkmem.h"


def inline(text: str) -> str:
    """Markdown's inline marks as roff: `code` bold, [text](link) as text, escapes."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", text)
    text = re.sub(r"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])", r"\\fI\1\\fR", text)
    return re.sub(r"`([^`]+)`", lambda code: "\\fB" + _edge_spaces(code.group(1)) + "\\fR", text)


def _edge_spaces(code: str) -> str:
    """A code span's leading and trailing spaces as unpaddable ones, which fill mode keeps."""
    core = code.strip(" ")
    start = len(code) - len(code.lstrip(" "))
    return "\\ " * start + core + "\\ " * (len(code) - len(core) - start)


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


def section(markdown: str, heading: str) -> List[str]:
    """The lines under a markdown heading (the heading given with its #s), up to the next
    heading of the same or a higher level."""
    lines = markdown.splitlines()
    start = lines.index(heading) + 1
    level = len(heading) - len(heading.lstrip("#"))
    end = start
    while end < len(lines):
        mark = lines[end].split(" ", 1)[0]
        if mark and set(mark) == {"#"} and len(mark) <= level and not _in_code(lines[:end]):
            break
        end += 1
    return lines[start:end]


def _in_code(lines: List[str]) -> bool:
    return sum(1 for line in lines if line.startswith("```")) % 2 == 1


def markdown_roff(lines: List[str], tag: int = 0, skip: Tuple[str, ...] = ()) -> List[str]:
    """Markdown as roff: paragraphs, "- " items, code blocks (unfilled), ### headings as .SS
    (those named in skip left out with what is under them), tables as tagged paragraphs (the
    tag from column tag, the other cells after it)."""
    out: List[str] = []
    paragraph: List[str] = []
    code = skipping = table = False
    names: List[str] = []

    def flush() -> None:
        if paragraph:
            out.extend([paragraph[0], inline(" ".join(paragraph[1:]))])
            paragraph.clear()

    for raw in lines:
        line = raw.rstrip() if code else raw.strip()
        if line.startswith("#") and not code:
            skipping = line.lstrip("#").strip() in skip
            if not skipping:
                flush()
                out.append(".SS " + inline(line.lstrip("#").strip()).replace("\\fB", "").replace("\\fR", ""))
            continue
        if skipping:
            code = code != line.startswith("```")
            continue
        if line.startswith("```"):
            flush()
            out.extend([".PP", ".RS 4", ".nf"] if not code else [".fi", ".RE"])
            code = not code
        elif code:
            text = line.replace("\\", "\\e").replace("\t", "        ")
            out.append("\\&" + text if text.startswith((".", "'")) else text)
        elif line.startswith("|"):
            flush()
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if not table:
                names, table = cells, True
            if cells is names or set(cells[0]) <= {"-"}:  # the header row and the line under it
                continue
            row = dict(zip(names, cells))
            label = "\\fB" + inline(cells[tag]).replace("\\fB", "").replace("\\fR", "") + "\\fR"
            if "default" in row:
                label += f" (default: {inline(row['default'])})"
            rest = [cell for name, cell in row.items() if name not in (names[tag], "default")]
            out.extend([".TP", label, inline("; ".join(rest))])
        elif not line:
            flush()
            table = False
        elif line.startswith("- "):
            flush()
            paragraph.extend([".IP \\(bu 2", line[2:]])
        else:
            paragraph.extend([line] if paragraph else [".PP", line])
    flush()
    return out


def kernel_doc(text: str) -> str:
    """Kernel-doc's marks (%CONSTANT, &struct name) as roff, with inline()'s escapes."""
    text = inline(text)
    text = re.sub(r"[%@](\w+)", r"\\fB\1\\fR", text)
    return re.sub(r"&struct (\w+)", r"\\fBstruct \1\\fR", text)


def sentence(text: str) -> str:
    """A comment's text as a sentence: a capital first letter and a full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def comment_text(comment: str) -> str:
    """A C comment's text on one line: its markers and leading stars taken out."""
    body = comment.strip()[2:-2].lstrip("*")
    return " ".join(line.strip().lstrip("*").strip() for line in body.splitlines() if line.strip().lstrip("*").strip())


def uapi() -> Dict[str, List[Tuple[str, str]]]:
    """kmod/uapi/shrinkmem.h's ioctls, structures (with their fields) and constants, each with its comment."""
    header = UAPI.read_text(encoding="utf-8")
    found: Dict[str, List[Tuple[str, str]]] = {"ioctl": [], "constant": []}
    for match in re.finditer(r"(/\*(?:[^*]|\*(?!/))*\*/)\s*\n#define (SHRINKMEM_IOC_\w+)\s+(_IO\w*)\(\w+, (0x\w+)"
                             r"(?:, (struct \w+))?\)", header):
        comment, name, kind, number, argument = match.groups()
        text = re.sub(rf"^{name} - ", "", comment_text(comment))
        found["ioctl"].append((name, f"{kind}('Y', {number}{', ' + argument if argument else ''}): {text}"))
    for match in re.finditer(r"/\*\*\n \* struct (\w+) - ([^\n]+)\n((?: \*[^\n]*\n)+?) \*/\nstruct \w+ \{\n(.*?)\n\};",
                             header, re.S):
        name, summary, doc, body = match.groups()
        fields = re.findall(r"@(\w+):\s*(.*?)(?=\n \* @|\Z)", doc, re.S)
        found["struct " + name] = [("", summary)] + [
            (" ".join(next(line for line in body.splitlines() if re.search(rf"\b{field};", line)).split()),
             " ".join(part.strip(" *") for part in text.splitlines())) for field, text in fields]
    for match in re.finditer(r"(?:(/\*.*?\*/)\n)?#define (SHRINKMEM_(?:ABI|METHOD|RESULT)_\w+) (\w+)(?: (/\*.*?\*/))?",
                             header):
        before, name, value, after = match.groups()
        found["constant"].append((f"{name} {value}", comment_text(after or before or "/* */")))
    return found


def shrinkmem_page() -> str:
    date = _date()
    readme = (REPO / "kmod" / "README.md").read_text(encoding="utf-8")
    version = re.search(r'^PACKAGE_VERSION="?([^"\n]+)"?$', (REPO / "kmod" / "dkms.conf").read_text(), re.M)
    assert version, "kmod/dkms.conf: no PACKAGE_VERSION"
    header = uapi()
    lines: List[str] = [
        f'.TH SHRINKMEM 4 "{date}" "shrinkmem {version.group(1)}" "Devices"',
        ".SH NAME",
        "shrinkmem \\- reclaim memory on request through /dev/shrinkmem",
        ".SH SYNOPSIS",
        ".nf",
        "\\fB#include \"shrinkmem.h\"\\fR",
        "",
        "\\fBecho\\fR \\fIMEGABYTES\\fR \\fB> /dev/shrinkmem\\fR",
        "\\fBcat /dev/shrinkmem\\fR",
        "\\fBioctl(\\fR\\fIfd\\fR\\fB, SHRINKMEM_IOC_RECLAIM, struct shrinkmem_reclaim *\\fR\\fIrequest\\fR\\fB);\\fR",
        "\\fBioctl(\\fR\\fIfd\\fR\\fB, SHRINKMEM_IOC_INFO, struct shrinkmem_info *\\fR\\fIinfo\\fR\\fB);\\fR",
        ".fi",
        ".SH DESCRIPTION",
        *markdown_roff(readme.splitlines()[1 : readme.splitlines().index("## Build")]),
        *markdown_roff(section(readme, "## Load and remove"), skip=("Module parameters",)),
        *markdown_roff(section(readme, "## Use"), skip=("ioctl (the daemon's interface)", "Errors")),
        ".SH IOCTLS",
    ]
    for name, text in header["ioctl"]:
        lines += [".TP", f"\\fB{name}\\fR", kernel_doc(text)]
    for struct in (key for key in header if key.startswith("struct ")):
        (_, summary), *fields = header[struct]
        lines += [f".SS {struct}", kernel_doc(sentence(summary))]
        for declaration, text in fields:
            lines += [".TP", f"\\fB{inline(declaration)}\\fR", kernel_doc(sentence(text))]
    lines += [".SS Constants"]
    for definition, text in header["constant"]:
        lines += [".TP", f"\\fB{inline(definition)}\\fR", kernel_doc(sentence(text))]
    lines += markdown_roff(section(readme, "### ioctl (the daemon's interface)"))
    lines += [".SH MODULE PARAMETERS", *markdown_roff(section(readme, "### Module parameters"))]
    lines += [".SH ERRORS", *markdown_roff(section(readme, "### Errors"), tag=1)]
    lines += [".SH NOTES", *markdown_roff(section(readme, "## Kernels where it refuses to load"))]
    lines += [
        ".SH FILES",
        ".TP", "\\fI/dev/shrinkmem\\fR", "The device (misc, mode 0600, owned by root).",
        ".TP", "\\fI/sys/module/shrinkmem/parameters/\\fR", "The module parameters, writable by root.",
        ".SH SEE ALSO",
        "shrinkd(8), insmod(8), modprobe(8), dkms(8), ioctl(2)",
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
