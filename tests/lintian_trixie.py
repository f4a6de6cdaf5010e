"""Debian 13 (trixie)'s lintian, run in a chroot, for the packaging tests.

    result = run_lintian([dsc, deb, ...], ["--display-level", ">=warning"])

The chroot is made by mmdebstrap (--variant=apt, trixie, lintian) from Debian's archive and kept
under $SHRINKD_TEST_CACHE (default /var/cache/shrinkd-tests)/lintian-trixie-KEY, KEY a digest of
what goes into it (suite, packages, archive, RECIPE_VERSION); it is built once, under a file lock,
in about 30 s (wall) and 25 CPU seconds. Each run copies the files to check (a .dsc with the files
it lists) into a folder of the chroot's /tmp, runs lintian there with chroot(8) in a mount and PID
namespace of its own with /proc mounted (unshare --mount-proc: the mount ends with the run), and
removes the folder. Building the chroot and running chroot need root.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

from tests.rootfs import cache_root

SUITE = "trixie"
PACKAGES = ("lintian",)
MIRROR = "http://deb.debian.org/debian"
RECIPE_VERSION = "1"
# What lintian runs with: nothing of the caller's environment (virtualenv, PYTHONPATH, locale).
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/tmp"}


def recipe() -> Dict[str, object]:
    return {"version": RECIPE_VERSION, "suite": SUITE, "packages": sorted(PACKAGES), "mirror": MIRROR}


def chroot_dir() -> Path:
    key = hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]
    return cache_root() / f"lintian-{SUITE}-{key}"


def ensure_chroot() -> Path:
    """The chroot's root folder: from the cache, or built now. RuntimeError (with mmdebstrap's last
    lines) when the archive cannot be reached or the build fails."""
    final = chroot_dir()
    if (final / "manifest.json").exists():
        return final / "root"
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building it
        if not (final / "manifest.json").exists():
            _build(final)
    return final / "root"


def _build(final: Path) -> None:
    work = final.with_name(final.name + ".building")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    log = work / "build.log"
    command = ["mmdebstrap", "--variant=apt", f"--include={','.join(PACKAGES)}", SUITE, str(work / "root"), MIRROR]
    started = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(f"building the {SUITE} lintian chroot from {MIRROR} failed (mmdebstrap exit {code}); "
                           f"log {log}, last lines:\n{tail}")
    versions = subprocess.run(["dpkg-query", f"--admindir={work / 'root/var/lib/dpkg'}", "-W", *PACKAGES],
                              capture_output=True, text=True, check=True).stdout
    manifest = {"recipe": recipe(), "versions": versions.splitlines(),
                "build_seconds": round(time.monotonic() - started, 1),
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1)}
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if final.exists():
        shutil.rmtree(final)
    work.rename(final)


def dsc_files(dsc: Path) -> List[Path]:
    """The files a .dsc lists under Files: (beside it)."""
    names: List[Path] = []
    listing = False
    for line in dsc.read_text().splitlines():
        if line.startswith("Files:"):
            listing = True
        elif listing and line.startswith(" "):
            names.append(dsc.parent / line.split()[2])
        else:
            listing = False
    return names


def run_lintian(targets: Sequence[Path], options: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """trixie's lintian with `options` on copies of `targets` (.dsc, .deb, .changes)."""
    root = ensure_chroot()
    inside = Path(tempfile.mkdtemp(prefix="lintian-", dir=root / "tmp"))
    try:
        for target in targets:
            for path in [target, *(dsc_files(target) if target.suffix == ".dsc" else [])]:
                shutil.copy2(path, inside / path.name)
        names = [f"/tmp/{inside.name}/{target.name}" for target in targets]
        return subprocess.run(
            ["unshare", "--mount", "--pid", "--fork", f"--mount-proc={root / 'proc'}",
             "chroot", str(root), "lintian", *options, *names],
            capture_output=True, text=True, check=False, env=ENV,
        )
    finally:
        shutil.rmtree(inside, ignore_errors=True)
