"""Point meta-shrinkd at a commit of this repository: SRCREV, and the recipes' versions.

    python3 scripts/yocto_srcrev.py [REV] [--layer DIR]

Run at each release, after the release commit (REV, HEAD by default; a tag names it as well):
sets SRCREV in the layer's recipes-support/shrinkd/shrinkd-source.inc to REV's commit and
renames the recipes to the versions REV's tree holds (pyproject.toml for shrinkd,
kmod/dkms.conf for shrinkmem). It changes nothing, and says why in one line, when REV is not
in this branch's history, when a file a recipe's do_install reads is not in REV's tree, or when
a licence file changed at REV (LIC_FILES_CHKSUM's md5: read the change, then update the
recipe by hand). Commit what it changed (`git add -A packaging/yocto`).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import posixpath
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
LAYER = REPO / "packaging" / "yocto" / "meta-shrinkd"
SOURCE_INC = Path("recipes-support") / "shrinkd" / "shrinkd-source.inc"
# Each recipe: its folder in the layer, and where its version is in the shrinkd tree.
RECIPES = {
    "shrinkd": ("recipes-support/shrinkd", "pyproject.toml", r'^version = "([^"]+)"$'),
    "shrinkmem": ("recipes-kernel/shrinkmem", "kmod/dkms.conf", r'^PACKAGE_VERSION="?([^"\n]+)"?$'),
}


class Refusal(Exception):
    """Why the layer cannot be pointed at the commit: one line."""


def git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=False)


def show(commit: str, path: str) -> bytes:
    result = git("show", f"{commit}:{path}")
    if result.returncode != 0:
        raise Refusal(f"{commit[:12]}: {path} is not in the tree")
    return result.stdout


def version_at(commit: str, path: str, pattern: str) -> str:
    found = re.search(pattern, show(commit, path).decode(), re.M)
    if not found:
        raise Refusal(f"{commit[:12]}:{path}: no version found")
    return found.group(1)


def recipe_file(layer: Path, name: str) -> Path:
    folder = layer / RECIPES[name][0]
    found = sorted(folder.glob(f"{name}_*.bb"))
    if len(found) != 1:
        raise Refusal(f"{folder}: expected one {name}_VERSION.bb, found {len(found)}")
    return found[0]


def source_subdir(recipe: str) -> str:
    """S below the unpacked tree: what follows ${BP} in the recipe's S, or the tree itself."""
    found = re.search(r'^S = "[^"]*\$\{BP\}/?([^"]*)"$', recipe, re.M)
    return found.group(1) if found else ""


def read_paths(recipe: str, subdir: str) -> List[str]:
    """The tree's files (or glob patterns) the recipe reads through ${S} and LIC_FILES_CHKSUM."""
    paths = re.findall(r"\$\{S\}/([^\s;\"]+)", recipe)
    paths += re.findall(r"file://([^;\s\"]+)", " ".join(re.findall(r'^LIC_FILES_CHKSUM = "([^"]*)"', recipe, re.M)))
    return [posixpath.normpath(posixpath.join(subdir, path)) for path in paths]


def check_licences(commit: str, recipe: str, subdir: str, name: str) -> None:
    for entry in " ".join(re.findall(r'^LIC_FILES_CHKSUM = "([^"]*)"', recipe, re.M)).split():
        path, *params = entry[len("file://") :].split(";")
        options = dict(param.split("=", 1) for param in params)
        lines = show(commit, posixpath.normpath(posixpath.join(subdir, path))).splitlines(True)
        begin, end = int(options.get("beginline", 1)), int(options.get("endline", len(lines)))
        md5 = hashlib.md5(b"".join(lines[begin - 1 : end])).hexdigest()
        if md5 != options.get("md5"):
            raise Refusal(f"{name}: the licence in {path} changed at {commit[:12]} (md5 {md5}, the recipe says "
                          f"{options.get('md5')}): read the change, then update LIC_FILES_CHKSUM")


def plan(layer: Path, rev: str) -> Tuple[str, Dict[Path, Path]]:
    """REV's commit and the recipes' renames (old path -> new path), or a Refusal."""
    found = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        raise Refusal(f"{rev}: not a commit of {REPO}")
    commit = found.stdout.decode().strip()
    if git("merge-base", "--is-ancestor", commit, "HEAD").returncode != 0:
        raise Refusal(f"{rev}: {commit[:12]} is not in this branch's history")
    tree = git("ls-tree", "-r", "--name-only", commit).stdout.decode().splitlines()
    renames: Dict[Path, Path] = {}
    for name, (_, version_file, pattern) in RECIPES.items():
        path = recipe_file(layer, name)
        text = path.read_text()
        subdir = source_subdir(text)
        for wanted in read_paths(text, subdir):
            if not fnmatch.filter(tree, wanted):
                raise Refusal(f"{path.name} reads {wanted}, which is not in {commit[:12]}'s tree")
        check_licences(commit, text, subdir, name)
        renamed = path.with_name(f"{name}_{version_at(commit, version_file, pattern)}.bb")
        if renamed != path:
            renames[path] = renamed
    return commit, renames


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("rev", nargs="?", default="HEAD", help="the commit to build (default HEAD)")
    parser.add_argument("--layer", type=Path, default=LAYER, help="the layer (default this tree's meta-shrinkd)")
    args = parser.parse_args(argv)
    try:
        commit, renames = plan(args.layer, args.rev)
    except Refusal as refusal:
        print(f"yocto_srcrev: {refusal}", file=sys.stderr)
        return 1
    inc = args.layer / SOURCE_INC
    text, count = re.subn(r'^SRCREV = "[0-9a-f]*"$', f'SRCREV = "{commit}"', inc.read_text(), flags=re.M)
    if count != 1:
        print(f"yocto_srcrev: {inc}: expected one SRCREV line, found {count}", file=sys.stderr)
        return 1
    inc.write_text(text)
    print(f"{inc.relative_to(args.layer)}: SRCREV = {commit}")
    for old, new in renames.items():
        old.rename(new)
        print(f"{old.relative_to(args.layer)} -> {new.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
