"""shrinkd(8), the manual page, from the command line's own argparse parser.

page() is the page scripts/manpages.py writes to man/shrinkd.8, the one copy the packages
install. Everything on it but FILES and SEE ALSO comes from shrinkd.cli.build_parser():
the description, every subcommand with its options, the common options and the exit
codes of the epilog, so the page cannot drift from `shrinkd --help`. The date is
SOURCE_DATE_EPOCH's (scripts/manpages.py sets a fixed one), so the page is reproducible.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shrinkd import __version__
from shrinkd.cli import build_parser

FILES = (
    ("/etc/shrinkd/shrinkd.yaml", "The configuration: rules (thresholds per zone and order), guards, PSI."),
    ("/etc/shrinkd/conf.d/*.yaml", "Drop-ins, read in name order after shrinkd.yaml; a later value wins."),
    ("/dev/shrinkmem", "The shrinkmem module's device, used for reclaim when it is loaded."),
)
SEE_ALSO = "systemctl(1), journalctl(1), systemd.service(5), dkms(8)"


def roff(text: str) -> str:
    """Text as roff: backslashes and hyphens escaped, no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines())


def option_label(action: argparse.Action) -> str:
    names = ", ".join(f"\\fB{roff(name)}\\fR" for name in action.option_strings)
    if action.nargs == 0:
        return names
    metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    return f"{names} \\fI{roff(metavar)}\\fR"


def options(actions: Iterable[argparse.Action], skip: Iterable[str] = ()) -> List[str]:
    lines = []
    skipped = set(skip)
    for action in actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or skipped & set(action.option_strings):
            continue
        lines += [".TP", option_label(action), roff(action.help or "")]
    return lines


def subcommands(parser: argparse.ArgumentParser) -> List[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.values())
    return []


def usage(parser: argparse.ArgumentParser) -> str:
    text = " ".join(parser.format_usage().split())
    return text[len("usage: ") :] if text.startswith("usage: ") else text


def exit_codes(epilog: Optional[str]) -> List[str]:
    lines = []
    for match in re.finditer(r"^\s+(\d+)\s+(.+)$", epilog or "", re.M):
        lines += [".TP", f"\\fB{match.group(1)}\\fR", roff(match.group(2))]
    return lines


def common_group(parser: argparse.ArgumentParser) -> List[argparse.Action]:
    for group in parser._action_groups:
        if group.title == "common options":
            return list(group._group_actions)
    return []


def page() -> str:
    parser = build_parser()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    date = time.strftime("%Y-%m-%d", time.gmtime(epoch))
    common = common_group(parser)
    common_flags = [flag for action in common for flag in action.option_strings]
    summary = (parser.description or "").rstrip(".")
    lines = [
        f'.TH SHRINKD 8 "{date}" "shrinkd {__version__}" "System Administration"',
        ".SH NAME",
        f"shrinkd \\- {roff(summary[0].lower() + summary[1:])}",
        ".SH SYNOPSIS",
        f".B shrinkd\n{roff(usage(parser)[len('shrinkd ') :])}",
        ".SH DESCRIPTION",
        roff(parser.description or ""),
        ".PP",
        "As a service, \\fBshrinkd run\\fR is started by \\fIshrinkd.service\\fR under a systemd sandbox; "
        "its events go to the journal (\\fBjournalctl \\-u shrinkd\\fR). "
        "\\fBsystemctl reload shrinkd\\fR rereads the configuration.",
        ".SH COMMANDS",
    ]
    for sub in subcommands(parser):
        lines += [".SS " + roff(usage(sub)), roff(sub.description or "")]
        lines += options(sub._actions, skip=["-h", *common_flags])
    lines += [".SH OPTIONS", *options(parser._actions), *options(common)]
    lines += [".SH EXIT STATUS", *exit_codes(parser.epilog)]
    lines += [".SH FILES"]
    for path, text in FILES:
        lines += [".TP", f"\\fI{roff(path)}\\fR", roff(text)]
    lines += [".SH SEE ALSO", roff(SEE_ALSO)]
    return "\n".join(lines) + "\n"
