"""Shell completion generated from the argument parser (shrinkd.completion, shtab), kept in contrib/completion/."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from shrinkd import cli, completion

REPO = Path(__file__).resolve().parent.parent
KEPT = {"bash": REPO / "contrib" / "completion" / "shrinkd.bash", "zsh": REPO / "contrib" / "completion" / "_shrinkd"}


def every_option() -> Dict[str, List[str]]:
    """Each subcommand's option strings, as the parser has them."""
    parser = cli.build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {
        name: [option for action in sub._actions for option in action.option_strings]
        for name, sub in commands.choices.items()
    }


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_the_kept_script_is_what_the_parser_gives_now(shell: str) -> None:
    assert KEPT[shell].read_text() == completion.script(shell), (
        f"run: python3 -m shrinkd.completion {shell} > {KEPT[shell].relative_to(REPO)}"
    )


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_the_script_names_every_subcommand_and_option(shell: str) -> None:
    text = completion.script(shell)
    options = every_option()
    assert len(options) == 10
    for name, strings in options.items():
        assert name in text
        for option in strings:
            assert option in text, (shell, name, option)


def complete(*words: str) -> List[str]:
    """What bash offers for the last of `words` with the kept script loaded."""
    line = " ".join(words)
    script = (
        f"source {KEPT['bash']}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
        f"COMP_POINT=${{#COMP_LINE}}; _shtab_shrinkd shrinkd {words[-1]} {words[-2]}; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return sorted(filter(None, result.stdout.splitlines()))


def test_bash_completes_subcommands_and_their_options() -> None:
    assert complete("shrinkd", "rec") == ["reclaim", "record"]
    assert complete("shrinkd", "reclaim", "--f") == ["--force"]
    assert complete("shrinkd", "check-config", "--no") == ["--no-system"]
