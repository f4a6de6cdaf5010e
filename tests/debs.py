"""Building the project's Debian packages for the tests: one entry point for every test that needs them.

    debs = build_debs(out_dir)                   # {"shrinkd": Path, "shrinkmem-dkms": Path}
    newer = build_debs(out_dir, version="0.1.1")  # the same sources as a newer shrinkd (upgrades)

The packages are built as Debian builds them: `dpkg-buildpackage -us -uc -b` from the
debian/ source package, with Debian's python3 and build dependencies only (scripts/setup.sh
installs them), on a copy of the files git tracks under BUILD_INPUTS (so build outputs in the checkout
never reach a package). `version` (and `module_version` for shrinkmem-dkms) make the copy a newer
release: a new debian/changelog entry, and the version in pyproject.toml and
shrinkd/__init__.py (dkms.conf, shrinkmem.c and debian/changelog.shrinkmem-dkms for the
module), which debian/rules checks agree.

A build takes about 20 s; its packages are kept in a cache keyed by every input (the
sources, the versions asked for, the versions of the Debian build tools), under
$SHRINKD_TEST_CACHE (default /var/cache/shrinkd-tests)/debs/KEY, and copied from there.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tests.vm import REPO

PACKAGES = ("shrinkd", "shrinkmem-dkms")
# What debian/rules reads: the binary packages are built from these alone, so a change
# elsewhere (tests, bench) leaves the cached packages valid.
BUILD_INPUTS = ("debian", "shrinkd", "config", "packaging", "kmod", "docs", "man", "contrib/completion", "README.md",
                "pyproject.toml", "setup.cfg")
# The Debian tools whose versions decide what a build produces (part of the cache key).
BUILD_TOOLS = ("dpkg-dev", "debhelper", "dh-python", "pybuild-plugin-pyproject", "dh-dkms", "python3-setuptools",
               "python3-minimal")
# A package build sees Debian's own tools only: no virtualenv, no pyenv, no PYTHONPATH.
BUILD_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/root"}
CACHE_VERSION = "1"


class BuildError(RuntimeError):
    pass


def cache_root() -> Path:
    return Path(os.environ.get("SHRINKD_TEST_CACHE", "/var/cache/shrinkd-tests")) / "debs"


def source_files(repo: Path = REPO, paths: Sequence[str] = ()) -> List[str]:
    """The files of the checkout a package is built from: those git tracks (and that exist), under `paths`."""
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--", *paths],
                            capture_output=True, check=False)
    if listed.returncode != 0:
        raise BuildError(f"{repo}: not a git checkout (git ls-files: {listed.stderr.decode().strip()})")
    names = sorted({name for name in listed.stdout.decode().split("\0") if name})
    return [name for name in names if os.path.lexists(repo / name)]


def tool_versions() -> str:
    query = subprocess.run(["dpkg-query", "-W", *BUILD_TOOLS], capture_output=True, text=True, check=False)
    return query.stdout


def cache_key(files: List[str], version: Optional[str], module_version: Optional[str], repo: Path = REPO) -> str:
    digest = hashlib.sha256()
    digest.update(f"{CACHE_VERSION}\0{version}\0{module_version}\0{tool_versions()}\0".encode())
    for name in files:
        path = repo / name
        digest.update(name.encode() + b"\0")
        if path.is_symlink():
            digest.update(b"link\0" + os.readlink(path).encode())
        else:
            digest.update(b"exec\0" if os.access(path, os.X_OK) else b"file\0")
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def copy_sources(files: List[str], dest: Path, repo: Path = REPO) -> None:
    for name in files:
        source, target = repo / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def control_field(control: Path, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.+)$", control.read_text(), re.M)
    if not match:
        raise BuildError(f"{control}: no {name}: field")
    return match.group(1).strip()


def add_changelog_entry(changelog: Path, package: str, version: str, maintainer: str, text: str) -> None:
    entry = (
        f"{package} ({version}) unstable; urgency=medium\n\n  * {text}\n\n"
        f" -- {maintainer}  {email.utils.formatdate(localtime=False)}\n\n"
    )
    changelog.write_text(entry + changelog.read_text())


def substitute(path: Path, pattern: str, replacement: str) -> None:
    text, count = re.subn(pattern, replacement, path.read_text(), count=1, flags=re.M)
    if count != 1:
        raise BuildError(f"{path}: no line matches {pattern!r}")
    path.write_text(text)


def set_versions(src: Path, version: Optional[str], module_version: Optional[str]) -> None:
    """Make the copied sources a newer release, in every place that states the version."""
    maintainer = control_field(src / "debian" / "control", "Maintainer")
    if version is not None:
        add_changelog_entry(src / "debian" / "changelog", "shrinkd", version, maintainer,
                            f"Release {version}.")
        substitute(src / "pyproject.toml", r'^version = ".*"$', f'version = "{version}"')
        substitute(src / "shrinkd" / "__init__.py", r'^__version__ = ".*"$', f'__version__ = "{version}"')
    if module_version is not None:
        add_changelog_entry(src / "debian" / "changelog.shrinkmem-dkms", "shrinkmem-dkms", module_version,
                            maintainer, f"shrinkmem {module_version}.")
        substitute(src / "kmod" / "dkms.conf", r'^PACKAGE_VERSION=.*$', f'PACKAGE_VERSION="{module_version}"')
        shrinkmem_c = src / "kmod" / "shrinkmem.c"
        if re.search(r'^#define SHRINKMEM_VERSION "', shrinkmem_c.read_text(), re.M):
            substitute(shrinkmem_c, r'^#define SHRINKMEM_VERSION ".*"$', f'#define SHRINKMEM_VERSION "{module_version}"')
        else:
            substitute(shrinkmem_c, r'MODULE_VERSION\(".*"\)', f'MODULE_VERSION("{module_version}")')


def dpkg_buildpackage(src: Path, log: Path) -> List[Path]:
    """Run dpkg-buildpackage -us -uc -b in src; the .debs it wrote beside src."""
    with log.open("w") as output:
        built = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=BUILD_ENV,
                               stdout=output, stderr=subprocess.STDOUT, check=False)
    if built.returncode != 0:
        tail = log.read_text()[-4000:]
        raise BuildError(f"dpkg-buildpackage failed ({built.returncode}), log {log}:\n{tail}")
    return sorted(src.parent.glob("*.deb"))


def by_package(paths: List[Path]) -> Dict[str, Path]:
    found = {path.name.split("_")[0]: path for path in paths}
    if set(found) != set(PACKAGES):
        raise BuildError(f"expected packages {PACKAGES}, built {[path.name for path in paths]}")
    return found


def build_debs(out: Path, version: Optional[str] = None, module_version: Optional[str] = None) -> Dict[str, Path]:
    """Build both packages (from the cache when built before) into `out`; their paths by package name.

    Raises BuildError (a RuntimeError) with the end of the build's log when the build fails.
    """
    files = source_files(paths=BUILD_INPUTS)
    key = cache_key(files, version, module_version)
    cached = cache_root() / key
    if not (cached / "done").exists():
        cache_root().mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=cache_root()))
        try:
            src = stage / "shrinkd"
            copy_sources(files, src)
            set_versions(src, version, module_version)
            debs = dpkg_buildpackage(src, stage / "build.log")
            result = stage / "result"
            result.mkdir()
            for deb in by_package(debs).values():
                deb.rename(result / deb.name)
            shutil.rmtree(src)
            (stage / "done").touch()
            with contextlib.suppress(OSError):  # built meanwhile by another run: keep that one
                stage.rename(cached)
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    for deb in (cached / "result").glob("*.deb"):
        shutil.copy2(deb, out / deb.name)
        copied.append(out / deb.name)
    return by_package(copied)


def build_source(out: Path) -> Path:
    """The Debian source package (dpkg-source --build, format 3.0 (native)) in `out`: its .dsc."""
    src = out / "shrinkd"
    copy_sources(source_files(), src)
    built = subprocess.run(["dpkg-source", "--build", "shrinkd"], cwd=out, env=BUILD_ENV, capture_output=True,
                           text=True, check=False)
    if built.returncode != 0:
        raise BuildError(f"dpkg-source failed:\n{built.stdout}{built.stderr}")
    shutil.rmtree(src)
    (dsc,) = out.glob("*.dsc")
    return dsc
