"""Building the project's Debian packages for the tests: one entry point for every test that needs them.

    debs = build_debs(out_dir)          # {"shrinkd": Path, "shrinkmem-dkms": Path}
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict

from tests.vm import REPO

BUILD = REPO / "packaging" / "build-debs.sh"
PACKAGES = ("shrinkd", "shrinkmem-dkms")


def build_debs(out: Path) -> Dict[str, Path]:
    """Build both packages into `out`; their paths by package name. Raises RuntimeError with the build's output."""
    built = subprocess.run(["bash", str(BUILD), str(out)], capture_output=True, text=True, check=False, cwd=REPO)
    if built.returncode != 0:
        raise RuntimeError(f"building the packages failed:\n{built.stdout}{built.stderr}")
    paths = [Path(line) for line in built.stdout.split()]
    by_name = {path.name.split("_")[0]: path for path in paths}
    if set(by_name) != set(PACKAGES):
        raise RuntimeError(f"expected packages {PACKAGES}, got:\n{built.stdout}")
    return by_name
