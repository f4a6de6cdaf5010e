"""The systemd unit and the Debian packages: systemd-analyze verify and security, package contents.

The packages are built with packaging/build-debs.sh into a folder under .vm/. The unit
is verified inside a root made of the shrinkd package's files plus this machine's
systemd units and /bin/kill, so `verify` checks the unit as installed (ExecStart=
pointing at the packaged /usr/bin/shrinkd).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from tests.debs import build_debs
from tests.vm import REPO, new_run_dir

UNIT = REPO / "packaging" / "systemd" / "shrinkd.service"
SCORE = re.compile(r"Overall exposure level for (\S+): (\d+\.\d+)")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or shutil.which("dpkg-deb") is None,
    reason="systemd-analyze and dpkg-deb are needed: run scripts/setup.sh",
)


def run(
    command: List[str], cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def debs() -> Dict[str, Path]:
    return build_debs(new_run_dir("debs-"))


@pytest.fixture(scope="module")
def installed_root(debs: Dict[str, Path]) -> Path:
    """The shrinkd package unpacked over a copy of this machine's systemd units and /bin/kill."""
    root = new_run_dir("root-")
    shutil.copytree("/lib/systemd/system", root / "lib" / "systemd" / "system", symlinks=True)
    (root / "bin").mkdir()
    shutil.copy2("/bin/kill", root / "bin" / "kill")
    unpacked = run(["dpkg-deb", "-x", str(debs["shrinkd"]), str(root)])
    assert unpacked.returncode == 0, unpacked.stderr
    return root


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    return run(["systemd-analyze", "verify", f"--root={root}", "shrinkd.service"])


def test_unit_verifies_as_installed(installed_root: Path) -> None:
    result = verify(installed_root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr


def test_verify_reports_a_broken_unit(installed_root: Path) -> None:
    """The check above can fail: a misspelt key and a missing ExecStart= binary are reported."""
    broken = new_run_dir("root-broken-")
    shutil.copytree(installed_root, broken, symlinks=True, dirs_exist_ok=True)
    unit = broken / "lib" / "systemd" / "system" / "shrinkd.service"
    unit.write_text(unit.read_text().replace("MemoryMin=", "MemoryMinimum=", 1))
    assert "MemoryMinimum" in verify(broken).stderr
    (broken / "usr" / "bin" / "shrinkd").unlink()
    result = verify(broken)
    assert result.returncode != 0 and "/usr/bin/shrinkd" in result.stderr


def security_score(unit: Path) -> float:
    result = run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)])
    match = SCORE.search(result.stdout)
    assert match, f"no score line in:\n{result.stdout}\n{result.stderr}"
    assert match.group(1) == unit.name
    return float(match.group(2))


def test_unit_security_exposure_at_most_2() -> None:
    assert security_score(UNIT) <= 2.0


def test_security_score_rises_without_the_sandbox(tmp_path: Path) -> None:
    """The score parsed above is the real one: stripping the sandbox lines raises it."""
    bare = tmp_path / "shrinkd.service"
    kept = [line for line in UNIT.read_text().splitlines() if not line.startswith(("Protect", "Private", "Restrict"))]
    bare.write_text("\n".join(kept) + "\n")
    assert security_score(bare) > security_score(UNIT) + 1.0


def test_unit_keeps_the_required_settings() -> None:
    settings: Dict[str, List[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    assert settings["Type"] == ["notify"]
    assert settings["ExecStart"] == ["/usr/bin/shrinkd run"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["OOMScoreAdjust"] == ["-900"]
    assert "WatchdogSec" in settings and "MemoryMin" in settings
    writable = " ".join(settings["ReadWritePaths"]).split()
    for path in (
        "/proc/sys/vm/compact_memory",
        "/proc/sys/vm/drop_caches",
        "/sys/fs/cgroup/memory.reclaim",
        "/sys/devices/system/node/node0/compact",
        "/sys/devices/system/node/node0/reclaim",
    ):
        assert "-" + path in writable
    # Nothing but single files is opened: no directory of tunables.
    assert all(Path(path.lstrip("-")).name in ("compact_memory", "drop_caches", "memory.reclaim", "compact", "reclaim")
               for path in writable)


def listing(deb: Path) -> Dict[str, str]:
    """Path -> mode string of every entry in a package (dpkg-deb -c)."""
    result = run(["dpkg-deb", "-c", str(deb)])
    assert result.returncode == 0, result.stderr
    entries = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        entries[fields[5].lstrip(".").rstrip("/") or "/"] = fields[0]
    return entries


def field(deb: Path, name: str) -> str:
    result = run(["dpkg-deb", "-f", str(deb), name])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_shrinkd_package_contents(debs: Dict[str, Path], installed_root: Path) -> None:
    deb = debs["shrinkd"]
    entries = listing(deb)
    assert entries["/usr/bin/shrinkd"] == "-rwxr-xr-x"
    assert entries["/etc/shrinkd/conf.d"].startswith("d")
    tracked = run(["git", "ls-files", "shrinkd"], cwd=REPO).stdout.split()
    modules = [path for path in tracked if path.endswith(".py")]
    assert modules and all(f"/usr/lib/python3/dist-packages/{path}" in entries for path in modules)
    assert not [path for path in entries if path.endswith(".pyc") or "__pycache__" in path]
    for packaged, source in (
        ("lib/systemd/system/shrinkd.service", "packaging/systemd/shrinkd.service"),
        ("lib/udev/rules.d/60-shrinkd.rules", "packaging/udev/60-shrinkd.rules"),
        ("etc/shrinkd/shrinkd.yaml", "config/shrinkd.yaml"),
        ("usr/share/doc/shrinkd/copyright", None),
    ):
        assert (installed_root / packaged).is_file(), packaged
        if source:
            assert (installed_root / packaged).read_bytes() == (REPO / source).read_bytes()
    depends = [dep.split()[0] for dep in field(deb, "Depends").split(", ")]
    declared = [dep for dep in metadata.requires("shrinkd") or [] if "extra ==" not in dep]
    debian = {"psutil": "python3-psutil", "pyudev": "python3-pyudev", "systemd-python": "python3-systemd",
              "pyyaml": "python3-yaml"}
    expected = ["python3"] + [debian[re.split(r"[<>=!~ ;\[]", dep)[0].lower()] for dep in declared]
    assert depends == expected
    assert "python3-yaml" in depends  # the configuration is YAML
    assert field(deb, "Architecture") == "all"
    conffiles = run(["dpkg-deb", "--info", str(deb), "conffiles"])
    assert conffiles.stdout.split() == ["/etc/shrinkd/shrinkd.yaml"]
    version = re.search(r'__version__ = "([^"]+)"', (REPO / "shrinkd" / "__init__.py").read_text())
    assert version and field(deb, "Version") == version.group(1)


def test_packaged_command_runs_with_debian_python(installed_root: Path) -> None:
    """The packaged launcher and modules run with Debian's python3 and its python3-* packages."""
    env = dict(os.environ, PYTHONPATH=str(installed_root / "usr" / "lib" / "python3" / "dist-packages"))
    launcher = installed_root / "usr" / "bin" / "shrinkd"
    assert launcher.read_text().startswith("#!/usr/bin/python3\n")
    result = run(["/usr/bin/python3", str(launcher), "status", "--json"], env=env)
    assert result.returncode == 0, result.stderr
    assert '"zones"' in result.stdout
    imports = run(["/usr/bin/python3", "-c", "import yaml"], env=env)
    assert imports.returncode == 0, imports.stderr
    config = run(["/usr/bin/python3", str(launcher), "check-config", str(installed_root / "etc/shrinkd/shrinkd.yaml")],
                 env=env)
    assert config.returncode == 0, config.stdout + config.stderr


def test_dkms_package_contents(debs: Dict[str, Path]) -> None:
    deb = debs["shrinkmem-dkms"]
    conf = (REPO / "kmod" / "dkms.conf").read_text()
    version = re.search(r'^PACKAGE_VERSION="?([^"\n]+)"?$', conf, re.M)
    assert version
    assert field(deb, "Version") == version.group(1)
    assert field(deb, "Depends").startswith("dkms")
    entries = listing(deb)
    source = f"/usr/src/shrinkmem-{version.group(1)}"
    tracked = run(["git", "ls-files", "kmod"], cwd=REPO).stdout.split()
    assert "kmod/shrinkmem.c" in tracked and "kmod/dkms.conf" in tracked
    for path in tracked:
        assert source + "/" + path[len("kmod/") :] in entries, path
    assert not [path for path in entries if path.endswith((".ko", ".o", ".mod.c"))]
    postinst = run(["dpkg-deb", "--info", str(deb), "postinst"]).stdout
    assert f"common.postinst shrinkmem {version.group(1)}" in postinst
