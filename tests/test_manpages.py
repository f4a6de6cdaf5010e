"""The manual pages kept in man/ (scripts/manpages.py): shrinkd(8), shrinkd.yaml(5) and
shrinkmem(4), current with their sources, complete, and clean to man's own checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from shrinkd import configfile

from .test_completion import every_option

REPO = Path(__file__).resolve().parent.parent
MAN = REPO / "man"


def text_of(page: str) -> str:
    """A page's source with roff's escapes and fonts taken out."""
    return (MAN / page).read_text().replace("\\-", "-").replace("\\e", "\\").replace("\\fB", "").replace("\\fR", "").replace("\\fI", "")


def keys(plain: Dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in plain.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from keys(value, f"{prefix}{key}.")
        if isinstance(value, list) and value and isinstance(value[0], dict):
            yield from keys(value[0], f"{prefix}{key}[].")


def test_the_kept_pages_are_what_their_sources_give_now() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/manpages.py", "--check"], cwd=REPO, capture_output=True, text=True, check=False,
        env={k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"},
    )
    assert result.returncode == 0, result.stderr


def test_shrinkd_yaml_5_has_every_key_of_the_configuration() -> None:
    defaults = configfile.validate(configfile.parse_text((REPO / "config" / "shrinkd.yaml").read_text(), "shrinkd.yaml"))
    every = list(keys(defaults))
    assert len(every) > 60
    page = text_of("shrinkd.yaml.5")
    assert [key for key in every if key not in page] == []


def test_shrinkd_8_has_every_subcommand_and_option() -> None:
    page = text_of("shrinkd.8")
    for name, options in every_option().items():
        assert f".SS shrinkd {name}" in page, name
        assert all(option in page for option in options), name


def test_shrinkmem_4_has_every_ioctl_parameter_and_error_of_the_module() -> None:
    """Each ioctl of the uapi header, each module parameter and each error code the module returns
    (ERESTARTSYS reaches callers as EINTR) is a tagged entry of shrinkmem(4), under its section."""
    source = (REPO / "kmod" / "shrinkmem.c").read_text()
    ioctls = re.findall(r"^#define (SHRINKMEM_IOC_\w+)\s+_IO", (REPO / "kmod" / "uapi" / "shrinkmem.h").read_text(), re.M)
    parameters = re.findall(r"^module_param(?:_cb)?\((\w+),", source, re.M)
    errors = set(re.findall(r"return -(E[A-Z]+);", source)) - {"ERESTARTSYS"}
    assert ioctls == ["SHRINKMEM_IOC_RECLAIM", "SHRINKMEM_IOC_INFO"] and parameters == ["max_mb", "chunk_mb"]
    assert len(errors) >= 6
    page = (MAN / "shrinkmem.4").read_text()
    sections = dict(re.findall(r"^\.SH (.+)\n((?:(?!\.SH ).*\n)*)", page, re.M))
    assert list(sections) == ["NAME", "SYNOPSIS", "DESCRIPTION", "IOCTLS", "MODULE PARAMETERS", "ERRORS", "NOTES",
                              "FILES", "SEE ALSO"]
    assert [name for name in ioctls if f".TP\n\\fB{name}\\fR\n" not in sections["IOCTLS"]] == []
    tags = re.findall(r"^\.TP\n\\fB([^\\]+)\\fR", sections["MODULE PARAMETERS"], re.M)
    assert tags == parameters
    tagged = re.findall(r"^\.TP\n\\fB(.+?)\\fR", sections["ERRORS"] + sections["NOTES"], re.M)
    assert [code for code in sorted(errors) if not any(code in tag for tag in tagged)
            and f"({code})" not in sections["NOTES"]] == []
    for member in ("pages_requested", "pages_reclaimed", "duration_ns", "abi_version", "max_pages", "page_size"):
        assert re.search(rf"^\\fB__u(32|64) {member};\\fR$", sections["IOCTLS"], re.M), member


@pytest.mark.parametrize("page", ["shrinkd.8", "shrinkd.yaml.5", "shrinkmem.4"])
def test_man_formats_the_page_without_a_warning(page: str) -> None:
    result = subprocess.run(
        ["man", "--warnings", "-l", str(MAN / page)], capture_output=True, text=True, check=False,
        env={**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": "0"},
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert len(result.stdout.splitlines()) > 100
