"""The systemd unit and the Debian packages: systemd-analyze verify and security, package contents, lintian
(this machine's, and Debian 13's in a chroot tests/lintian_trixie.py builds once).

The packages are built from the debian/ source package with dpkg-buildpackage (tests/debs.py)
into a folder under .vm/. The unit is verified inside a root made of the shrinkd package's
files plus this machine's systemd units and /bin/kill, so `verify` checks the unit as
installed (ExecStart= pointing at the packaged /usr/bin/shrinkd). What the packages do
when installed, removed, upgraded and purged in a booted system is tested in guests; here
their maintainer scripts are read for the parts those tests rely on.
"""

from __future__ import annotations

import ast
import gzip
import io
import os
import re
import shutil
import subprocess
import tarfile
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from tests import lintian_trixie
from tests.debs import build_debs, build_source
from tests.vm import REPO, new_run_dir

UNIT = REPO / "packaging" / "systemd" / "shrinkd.service"
# The top-level folders that are links into /usr on a merged-/usr system (Debian 12 and later): a
# package file under one of them is an aliased location (DEP17), which trixie's lintian calls an error.
ALIASED = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SCORE = re.compile(r"Overall exposure level for (\S+): (\d+\.\d+)")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or shutil.which("dpkg-buildpackage") is None
    or shutil.which("lintian") is None,
    reason="systemd-analyze, dpkg-buildpackage and lintian are needed: run scripts/setup.sh",
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
    """The shrinkd package unpacked over a copy of this machine's systemd units and /bin/kill, in a merged-/usr
    root (/bin and /lib are links into /usr, as on Debian 12 and later)."""
    root = new_run_dir("root-")
    shutil.copytree("/usr/lib/systemd/system", root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    shutil.copy2("/bin/kill", root / "usr" / "bin" / "kill")
    for alias in ALIASED:
        (root / alias.lstrip("/")).symlink_to("usr" + alias)
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
    unit = broken / "usr" / "lib" / "systemd" / "system" / "shrinkd.service"
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
        "/proc/sys/vm/vfs_cache_pressure",
        "/sys/fs/cgroup/memory.reclaim",
        "/sys/devices/system/node/node0/compact",
        "/sys/devices/system/node/node0/reclaim",
    ):
        assert "-" + path in writable
    # Nothing but single files is opened: no directory of tunables; one directory for the metrics textfile.
    files = ("compact_memory", "drop_caches", "vfs_cache_pressure", "memory.reclaim", "compact", "reclaim")
    assert all(Path(path.lstrip("-")).name in files for path in writable if path != "-/var/lib/prometheus/node-exporter")
    assert settings["RuntimeDirectoryPreserve"] == ["restart"]  # vfs_cache_pressure's saved value outlives a crash
    assert "-/var/lib/prometheus/node-exporter" in writable and settings["StateDirectory"] == ["shrinkd"]


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


def control_file(deb: Path, name: str) -> str:
    result = run(["dpkg-deb", "--info", str(deb), name])
    assert result.returncode == 0, result.stderr
    return result.stdout


def member(deb: Path, path: str) -> bytes:
    """One file of a package's data, read with dpkg-deb --fsys-tarfile."""
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        extracted = archive.extractfile("." + path)
        assert extracted is not None, path
        return extracted.read()


def changelog_top(deb: Path, package: str) -> str:
    """The first line of a package's changelog (native packages: changelog.gz)."""
    return gzip.decompress(member(deb, f"/usr/share/doc/{package}/changelog.gz")).decode().splitlines()[0]


def python_version() -> str:
    found = re.search(r'__version__ = "([^"]+)"', (REPO / "shrinkd" / "__init__.py").read_text())
    assert found
    return found.group(1)


def module_version() -> str:
    found = re.search(r'^PACKAGE_VERSION="?([^"\n]+)"?$', (REPO / "kmod" / "dkms.conf").read_text(), re.M)
    assert found
    return found.group(1)


DEBIAN_NAMES = {"psutil": "python3-psutil", "pyudev": "python3-pyudev", "systemd-python": "python3-systemd",
                "pyyaml": "python3-yaml"}


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
        ("usr/lib/systemd/system/shrinkd.service", "packaging/systemd/shrinkd.service"),
        ("usr/lib/udev/rules.d/60-shrinkd.rules", "packaging/udev/60-shrinkd.rules"),
        ("etc/shrinkd/shrinkd.yaml", "config/shrinkd.yaml"),
        ("usr/bin/shrinkd", "packaging/bin/shrinkd"),
        # uncompressed: the unit's Documentation= names it
        ("usr/share/doc/shrinkd/README.md", "README.md"),
        ("usr/share/doc/shrinkd/copyright", "debian/copyright"),
    ):
        assert (installed_root / packaged).is_file(), packaged
        assert (installed_root / packaged).read_bytes() == (REPO / source).read_bytes(), packaged
    assert "/usr/share/man/man8/shrinkd.8.gz" in entries
    # Depends: ${python3:Depends}, which dh_python3 derives from the wheel's Requires-Dist.
    depends = {dep.split()[0] for dep in field(deb, "Depends").split(", ")}
    declared = [dep for dep in metadata.requires("shrinkd") or [] if "extra ==" not in dep]
    expected = {"python3:any"} | {DEBIAN_NAMES[re.split(r"[<>=!~ ;\[]", dep)[0].lower()] for dep in declared}
    assert depends == expected
    assert "python3-yaml" in depends  # the configuration is YAML
    assert field(deb, "Architecture") == "all"
    assert control_file(deb, "conffiles").split() == ["/etc/shrinkd/shrinkd.yaml"]
    assert field(deb, "Version") == python_version()
    assert changelog_top(deb, "shrinkd").startswith(f"shrinkd ({python_version()}) ")


def test_packages_install_nothing_under_an_aliased_folder(debs: Dict[str, Path]) -> None:
    """Every file under /usr (or /etc): debian/rules moves what bookworm's debhelper puts under /lib."""
    for package, deb in debs.items():
        entries = listing(deb)
        assert [path for path in entries if any(path == alias or path.startswith(alias + "/") for alias in ALIASED)] \
            == [], package
    assert "/usr/lib/systemd/system/shrinkd.service" in listing(debs["shrinkd"])


# The unit and the rule, where shrinkd releases before 0.1.0's move to /usr put them.
MOVED = {"/usr/lib/systemd/system/shrinkd.service": "/lib/systemd/system/shrinkd.service",
         "/usr/lib/udev/rules.d/60-shrinkd.rules": "/lib/udev/rules.d/60-shrinkd.rules"}


def repack(deb: Path, out: Path, version: str, package: str = "shrinkd", to_lib: bool = False,
           keep: Optional[List[str]] = None, replaces: str = "") -> Path:
    """A copy of `deb` at `version` without maintainer scripts (only dpkg's file handling is under test):
    `to_lib` puts the unit and the rule back under /lib, `keep` leaves only those files."""
    root = out / f"{package}-{version}"
    assert run(["dpkg-deb", "-R", str(deb), str(root)]).returncode == 0
    for script in ("preinst", "postinst", "prerm", "postrm", "conffiles"):
        (root / "DEBIAN" / script).unlink(missing_ok=True)
    (root / "DEBIAN" / "md5sums").unlink()
    if to_lib:
        for new, old in MOVED.items():
            (root / old.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / new.lstrip("/")).rename(root / old.lstrip("/"))
    if keep is not None:
        for path in sorted(root.rglob("*"), reverse=True):
            inside = "/" + str(path.relative_to(root))
            if inside.startswith("/DEBIAN"):
                continue
            if path.is_dir() and not path.is_symlink():
                if not any(path.iterdir()):
                    path.rmdir()
            elif inside not in keep:
                path.unlink()
    control = root / "DEBIAN" / "control"
    text = re.sub(r"^Version: .*$", f"Version: {version}", control.read_text(), flags=re.M)
    text = re.sub(r"^Package: .*$", f"Package: {package}", text, flags=re.M)
    control.write_text(text + (f"Replaces: {replaces}\n" if replaces else ""))
    built = out / f"{package}_{version}_all.deb"
    result = run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(built)])
    assert result.returncode == 0, result.stderr
    return built


def merged_usr_root(tmp: Path) -> Path:
    """An empty dpkg database in a root whose /bin, /sbin and /lib are links into /usr (merged /usr)."""
    root = tmp / "root"
    for folder in ("usr/bin", "usr/sbin", "usr/lib", "var/lib/dpkg/info", "var/lib/dpkg/updates"):
        (root / folder).mkdir(parents=True)
    for alias in ("/bin", "/sbin", "/lib"):
        (root / alias.lstrip("/")).symlink_to("usr" + alias)
    (root / "var/lib/dpkg/status").touch()
    return root


def unpack(root: Path, deb: Path) -> None:
    result = run(["dpkg", f"--root={root}", "--log=/dev/null", "--unpack", str(deb)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_upgrade_from_lib_paths_keeps_the_unit_and_rule(debs: Dict[str, Path], tmp_path: Path) -> None:
    """DEP17: on a merged-/usr system, upgrading from a shrinkd with the unit and rule under /lib to this one
    (under /usr/lib) keeps both. dpkg removes the old paths, which are the same files as the new ones: it
    leaves a file that is the same (device and inode) as one the new version installs."""
    root = merged_usr_root(tmp_path)
    unpack(root, repack(debs["shrinkd"], tmp_path, "0.0.9", to_lib=True))
    assert all((root / old.lstrip("/")).is_file() for old in MOVED.values())
    unpack(root, repack(debs["shrinkd"], tmp_path, "0.1.0"))
    for new in MOVED:
        assert (root / new.lstrip("/")).read_bytes() == member(debs["shrinkd"], new), new
    owned = run(["dpkg-query", f"--admindir={root / 'var/lib/dpkg'}", "-L", "shrinkd"]).stdout.splitlines()
    assert set(MOVED) <= set(owned) and not set(MOVED.values()) & set(owned)


def test_a_move_to_another_package_loses_the_file(debs: Dict[str, Path], tmp_path: Path) -> None:
    """The check above can fail: moving the rule to /usr/lib in another package while shrinkd drops it (the
    file loss DEP17 warns of) leaves no rule, in the same merged-/usr root."""
    root = merged_usr_root(tmp_path)
    rule = "/usr/lib/udev/rules.d/60-shrinkd.rules"
    unpack(root, repack(debs["shrinkd"], tmp_path, "0.0.9", to_lib=True))
    unpack(root, repack(debs["shrinkd"], tmp_path, "0.0.9", package="shrinkd-rules", keep=[rule], replaces="shrinkd"))
    assert (root / rule.lstrip("/")).is_file()
    unpack(root, repack(debs["shrinkd"], tmp_path, "0.1.0", keep=["/usr/bin/shrinkd"]))
    assert not (root / rule.lstrip("/")).exists()


def test_manual_page_lists_every_subcommand(debs: Dict[str, Path], tmp_path: Path) -> None:
    from shrinkd.cli import build_parser

    page = gzip.decompress(member(debs["shrinkd"], "/usr/share/man/man8/shrinkd.8.gz")).decode()
    assert page.startswith(".TH SHRINKD 8 ")
    commands = [action for action in build_parser()._actions if action.dest == "command"]
    assert commands and commands[0].choices
    for name in commands[0].choices:
        assert f".SS shrinkd {name.replace('-', chr(92) + '-')} " in page, name
    for code in range(6):
        assert f".TP\n\\fB{code}\\fR\n" in page, code
    if shutil.which("man"):
        (tmp_path / "shrinkd.8").write_text(page)
        rendered = run(["man", "--warnings", "-l", str(tmp_path / "shrinkd.8")], env=dict(os.environ, MANWIDTH="80"))
        assert rendered.returncode == 0 and rendered.stderr == "", rendered.stderr
        assert "check-config" in rendered.stdout


# What the packages install of the tree's manual pages, completion and pictures: (package, path in
# the package, the kept file in the tree, gzip-compressed in the package).
DOCUMENTATION = [
    ("shrinkd", "/usr/share/man/man8/shrinkd.8.gz", "man/shrinkd.8", True),
    ("shrinkd", "/usr/share/man/man5/shrinkd.yaml.5.gz", "man/shrinkd.yaml.5", True),
    ("shrinkmem-dkms", "/usr/share/man/man4/shrinkmem.4.gz", "man/shrinkmem.4", True),
    ("shrinkd", "/usr/share/bash-completion/completions/shrinkd", "contrib/completion/shrinkd.bash", False),
    ("shrinkd", "/usr/share/zsh/vendor-completions/_shrinkd", "contrib/completion/_shrinkd", False),
] + [("shrinkd", f"/usr/share/doc/shrinkd/{picture.name}", f"docs/{picture.name}", False)
     for picture in sorted((REPO / "docs").glob("*.png"))]


def test_packages_install_the_manual_pages_completion_and_pictures(debs: Dict[str, Path]) -> None:
    """Each kept page, completion script and docs/*.png is in its package (dpkg-deb -c), as it is in the tree."""
    assert [entry for entry in DOCUMENTATION if entry[2].endswith(".png")], "docs/*.png: no picture"
    listings = {package: listing(deb) for package, deb in debs.items()}
    assert [path for package, path, _, _ in DOCUMENTATION if listings[package].get(path) != "-rw-r--r--"] == []
    for package, path, source, compressed in DOCUMENTATION:
        data = member(debs[package], path)
        assert (gzip.decompress(data) if compressed else data) == (REPO / source).read_bytes(), path
    # docs/*.md's pictures are named relative to the page: they sit beside the installed pages.
    installed = {Path(path).name for path in listings["shrinkd"] if path.startswith("/usr/share/doc/shrinkd/")}
    linked = {link for page in (REPO / "docs").glob("*.md") for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text())}
    assert linked and [link for link in linked if link not in installed] == []
    assert {"config.md", "outcome.md"} <= {name.replace(".gz", "") for name in installed}


def test_readme_says_where_the_debian_packages_put_them() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Manual pages and shell completion") :]
    section = section[: section.index("\n## ", 1)]
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| Debian ")}
    for package, path, _, _ in DOCUMENTATION:
        row = rows[f"Debian `{package}`"]
        if path.startswith("/usr/share/man/"):
            page, section = re.fullmatch(r"(.+)\.(\d)\.gz", Path(path).name).groups()  # type: ignore[union-attr]
            assert f"{page}({section})" in row, path
        elif "completion" in path:
            assert path in row, path
        else:
            assert "docs/*.png in /usr/share/doc/shrinkd" in row, path


@pytest.mark.parametrize("package, path", [(package, path) for package, path, _, compressed in DOCUMENTATION if compressed])
def test_installed_manual_page_renders_without_a_warning(debs: Dict[str, Path], tmp_path: Path, package: str,
                                                         path: str) -> None:
    page = tmp_path / Path(path).name
    page.write_bytes(member(debs[package], path))
    rendered = run(["man", "--warnings", "-l", str(page)],
                   env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0"))
    assert rendered.returncode == 0 and rendered.stderr == "", rendered.stderr
    name = Path(path).name.split(".")[0].upper()
    assert rendered.stdout.startswith(name) and len(rendered.stdout.splitlines()) > 100


def test_packaged_command_runs_with_debian_python(installed_root: Path) -> None:
    """The packaged launcher and modules run with Debian's python3 and its python3-* packages."""
    env = dict(os.environ, PYTHONPATH=str(installed_root / "usr" / "lib" / "python3" / "dist-packages"))
    launcher = installed_root / "usr" / "bin" / "shrinkd"
    assert launcher.read_text().startswith("#!/usr/bin/python3\n")
    result = run(["/usr/bin/python3", str(launcher), "status", "--json"], env=env)
    assert result.returncode == 0, result.stderr
    assert '"zones"' in result.stdout
    version = run(["/usr/bin/python3", str(launcher), "--version"], env=env)
    assert version.stdout.strip() == f"shrinkd {python_version()}", version.stdout + version.stderr
    config = run(["/usr/bin/python3", str(launcher), "check-config", str(installed_root / "etc/shrinkd/shrinkd.yaml")],
                 env=env)
    assert config.returncode == 0, config.stdout + config.stderr


def test_launcher_imports_only_the_cli(installed_root: Path) -> None:
    """The packaged launcher adds no module to the daemon (the one Python's installer writes imports re)."""
    tree = ast.parse((installed_root / "usr" / "bin" / "shrinkd").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"sys", "shrinkd.cli"}


def test_maintainer_scripts_keep_the_service_usable(debs: Dict[str, Path]) -> None:
    """Remove then install leaves the unit unmasked and enabled; purge removes the configuration."""
    postinst = control_file(debs["shrinkd"], "postinst")
    postrm = control_file(debs["shrinkd"], "postrm")
    prerm = control_file(debs["shrinkd"], "prerm")
    assert "deb-systemd-helper unmask 'shrinkd.service'" in postinst
    assert "deb-systemd-helper enable 'shrinkd.service'" in postinst
    assert "deb-systemd-invoke $_dh_action 'shrinkd.service'" in postinst
    # removal neither masks the unit (the old hand-written postrm did) nor leaves it running
    assert "mask" not in postrm.replace("unmask", "")
    assert "deb-systemd-invoke stop 'shrinkd.service'" in prerm
    purge = postrm[postrm.index('if [ "$1" = "purge" ]') :]
    assert "rm -rf /etc/shrinkd" in purge and "deb-systemd-helper purge 'shrinkd.service'" in purge
    assert "py3compile -p shrinkd" in postinst and "py3clean -p shrinkd" in prerm


def test_dkms_package_contents(debs: Dict[str, Path]) -> None:
    deb = debs["shrinkmem-dkms"]
    version = module_version()
    assert field(deb, "Version") == version
    # built from the shrinkd source package, at its own version, with its own changelog
    assert field(deb, "Source") == f"shrinkd ({python_version()})"
    assert changelog_top(deb, "shrinkmem-dkms").startswith(f"shrinkmem-dkms ({version}) ")
    assert field(deb, "Depends").startswith("dkms")
    entries = listing(deb)
    source = f"/usr/src/shrinkmem-{version}"
    tracked = run(["git", "ls-files", "kmod"], cwd=REPO).stdout.split()
    assert "kmod/shrinkmem.c" in tracked and "kmod/dkms.conf" in tracked
    for path in tracked:
        assert source + "/" + path[len("kmod/") :] in entries, path
    assert not [path for path in entries if path.endswith((".ko", ".o", ".mod.c"))]
    assert member(deb, f"{source}/dkms.conf") == (REPO / "kmod" / "dkms.conf").read_bytes()
    # not loaded at boot (a kernel it refuses would fail systemd-modules-load.service): shrinkd's
    # unit loads it as it starts (test_unit_loads_the_module_as_it_starts)
    assert not [path for path in entries if "modules-load.d" in path]
    postinst = control_file(deb, "postinst")
    assert f"DKMS_NAME=shrinkmem\nDKMS_PACKAGE_NAME=$DKMS_NAME-dkms\nDKMS_VERSION={version}\n" in postinst
    assert "/usr/lib/dkms/common.postinst" in postinst and "$DKMS_POSTINST $DKMS_NAME $DKMS_VERSION" in postinst
    prerm = control_file(deb, "prerm")
    assert "dkms remove -m $DKMS_NAME -v $DKMS_VERSION --all" in prerm


def bad_package(debs: Dict[str, Path], tmp: Path) -> Path:
    """A copy of shrinkmem-dkms renamed shrinkmem-bad, with its maintainer on localhost: a lintian error."""
    root = tmp / "root"
    assert run(["dpkg-deb", "-R", str(debs["shrinkmem-dkms"]), str(root)]).returncode == 0
    control = root / "DEBIAN" / "control"
    # a source of its own, so that lintian checks it apart from ours
    text = re.sub(r"^Source: .*\n", "", control.read_text().replace("Package: shrinkmem-dkms", "Package: shrinkmem-bad"),
                  flags=re.M)
    control.write_text(re.sub(r"^Maintainer: .*$", "Maintainer: shrinkd <shrinkd@localhost>", text, flags=re.M))
    bad = tmp / "shrinkmem-bad_1.0.0_all.deb"
    assert run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(bad)]).returncode == 0
    return bad


LINTIAN_OPTIONS = ["--display-level", ">=warning"]


@pytest.fixture(scope="module")
def lintian_targets(debs: Dict[str, Path]) -> List[Path]:
    """What lintian checks: the source package, both binary packages and a bad package that shows the
    check can fail."""
    out = new_run_dir("lintian-")
    return [build_source(out), debs["shrinkd"], debs["shrinkmem-dkms"], bad_package(debs, out)]


def hints_by_package(result: subprocess.CompletedProcess[str]) -> Dict[str, List[str]]:
    """Errors and warnings (E:/W: lines) of one lintian run, by package ("NAME source" for a source)."""
    assert result.returncode in (0, 1, 2), result.stdout + result.stderr
    found: Dict[str, List[str]] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"([EW]): (\S+?)( source)?: ", line)
        if match:
            found.setdefault(match.group(2) + (match.group(3) or ""), []).append(line)
    return found


@pytest.fixture(scope="module")
def lintian_hints(lintian_targets: List[Path]) -> Dict[str, List[str]]:
    """This machine's (Debian 12, bookworm) lintian."""
    return hints_by_package(run(["lintian", *LINTIAN_OPTIONS, *map(str, lintian_targets)]))


def test_lintian_reports_no_error_or_warning(lintian_hints: Dict[str, List[str]]) -> None:
    ours = {name: lines for name, lines in lintian_hints.items() if not name.startswith("shrinkmem-bad")}
    assert ours == {}


def test_lintian_sees_a_bad_package(lintian_hints: Dict[str, List[str]]) -> None:
    """The check above can fail: a maintainer on localhost is an error."""
    assert any("bogus-mail-host" in line for line in lintian_hints.get("shrinkmem-bad", []))


@pytest.fixture(scope="module")
def trixie_lintian_hints(lintian_targets: List[Path]) -> Dict[str, List[str]]:
    """Debian 13 (trixie)'s lintian, in a chroot built once and cached (tests/lintian_trixie.py)."""
    return hints_by_package(lintian_trixie.run_lintian(lintian_targets, LINTIAN_OPTIONS))


@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="mmdebstrap is needed: run scripts/setup.sh")
def test_trixie_lintian_reports_no_error_or_warning(trixie_lintian_hints: Dict[str, List[str]]) -> None:
    """Debian 13's lintian has newer checks: the packages are clean there too."""
    ours = {name: lines for name, lines in trixie_lintian_hints.items() if not name.startswith("shrinkmem-bad")}
    assert ours == {}


@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="mmdebstrap is needed: run scripts/setup.sh")
def test_trixie_lintian_sees_a_bad_package(trixie_lintian_hints: Dict[str, List[str]]) -> None:
    """Debian 13's lintian runs on the same targets with the same options, and flags the bad package."""
    assert any("bogus-mail-host" in line for line in trixie_lintian_hints.get("shrinkmem-bad", []))


@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="mmdebstrap is needed: run scripts/setup.sh")
def test_unreachable_archive_fails_the_trixie_chroot_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No archive, no chroot: an error naming the archive and the log, not a skip."""
    monkeypatch.setenv("SHRINKD_TEST_CACHE", str(tmp_path))
    monkeypatch.setattr(lintian_trixie, "MIRROR", "http://127.0.0.1:9/debian")
    with pytest.raises(RuntimeError, match=r"building the trixie lintian chroot from http://127\.0\.0\.1:9/debian failed "
                                           r"\(mmdebstrap exit \d+\); log .*build\.log") as raised:
        lintian_trixie.ensure_chroot()
    assert "Could not connect to 127.0.0.1:9" in str(raised.value)


def test_lintian_overrides_are_justified() -> None:
    """Every lintian override in debian/ has a comment above it saying why."""
    for overrides in (REPO / "debian").rglob("*lintian-overrides"):
        previous = ""
        for number, line in enumerate(overrides.read_text().splitlines(), 1):
            if line.strip() and not line.startswith("#"):
                assert previous.startswith("#"), f"{overrides}:{number}: override without a comment: {line}"
            previous = line if line.strip() else previous


def test_newer_version_for_upgrades(debs: Dict[str, Path]) -> None:
    """build_debs(version=...) builds the same sources as a newer shrinkd, every version field agreeing."""
    newer = build_debs(new_run_dir("debs-newer-"), version="99.0.1")
    deb = newer["shrinkd"]
    assert field(deb, "Version") == "99.0.1"
    assert changelog_top(deb, "shrinkd").startswith("shrinkd (99.0.1) ")
    assert b'__version__ = "99.0.1"' in member(deb, "/usr/lib/python3/dist-packages/shrinkd/__init__.py")
    assert "/usr/lib/python3/dist-packages/shrinkd-99.0.1.dist-info/METADATA" in listing(deb)
    assert field(newer["shrinkmem-dkms"], "Version") == module_version()
    assert run(["dpkg", "--compare-versions", "99.0.1", "gt", field(debs["shrinkd"], "Version")]).returncode == 0


def test_unit_loads_the_module_as_it_starts() -> None:
    """shrinkmem is loaded by modprobe@shrinkmem.service, ordered before shrinkd (so DeviceAllow= sees
    the node), whose `-` prefix makes a refusal a line in the journal, never a failed unit."""
    lines = UNIT.read_text().splitlines()
    assert "Wants=modprobe@shrinkmem.service" in lines
    after = next(line for line in lines if line.startswith("After="))
    assert "modprobe@shrinkmem.service" in after.split("=", 1)[1].split()
    assert "systemd-modules-load.service" not in after
    template = Path("/lib/systemd/system/modprobe@.service").read_text()
    assert re.search(r"^ExecStart=-/sbin/modprobe -\w*q\w* %i$", template, re.M), template
    assert not (REPO / "packaging" / "modules-load.d").exists()


def dkms_build(tmp: Path, arch: str, config: str) -> subprocess.CompletedProcess[str]:
    """`dkms build` of kmod/dkms.conf (with no sources to build) for a kernel whose .config is CONFIG,
    in trees of its own: exit status 77 is DKMS's "BUILD_EXCLUSIVE does not match: not built"."""
    source, tree, kernel = tmp / "src" / f"shrinkmem-{module_version()}", tmp / "tree", tmp / "kernel"
    for folder in (source, tree, kernel):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "kmod" / "dkms.conf", source / "dkms.conf")
    (kernel / ".config").write_text(config)
    dkms = ["dkms", "--dkmstree", str(tree), "--sourcetree", str(tmp / "src")]
    module = f"shrinkmem/{module_version()}"
    if not (tree / "shrinkmem").exists():
        added = run([*dkms, "add", module])
        assert added.returncode == 0, added.stdout + added.stderr
    return run([*dkms, "--kernelsourcedir", str(kernel), "build", module, "-k", "6.1.0-test", "-a", arch])


@pytest.mark.skipif(shutil.which("dkms") is None, reason="dkms is needed: run scripts/setup.sh")
def test_dkms_skips_kernels_the_module_cannot_serve(tmp_path: Path) -> None:
    """BUILD_EXCLUSIVE_ARCH and BUILD_EXCLUSIVE_CONFIG as Debian's dkms reads them: other architectures
    and kernels without CONFIG_HIBERNATION are skipped (77, which dkms' postinst takes as not for this
    kernel); x86_64, aarch64 and 32-bit arm kernels with it go on to the build."""
    with_hibernation = "CONFIG_HIBERNATION=y\n"
    for arch in ("x86_64", "aarch64", "armv7l", "armv6l"):
        built = dkms_build(tmp_path, arch, with_hibernation)
        assert built.returncode != 77 and "BUILD_EXCLUSIVE" not in built.stdout + built.stderr, (arch, built.stderr)
    for arch in ("ppc64le", "riscv64", "i686", "s390x"):
        assert dkms_build(tmp_path, arch, with_hibernation).returncode == 77, arch
    without = dkms_build(tmp_path, "x86_64", "# CONFIG_HIBERNATION is not set\nCONFIG_SUSPEND=y\n")
    assert without.returncode == 77 and "BUILD_EXCLUSIVE" in without.stdout + without.stderr


def deb822_paragraphs(path: Path) -> List[Dict[str, str]]:
    """The paragraphs of a deb822 file (fields continued on indented lines; # comments)."""
    paragraphs: List[Dict[str, str]] = []
    current: Dict[str, str] = {}
    name = ""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                paragraphs.append(current)
            current = {}
        elif line[0] in " \t":
            assert name, f"{path}:{number}: a continuation line without a field"
            current[name] += "\n" + line.strip()
        else:
            name, sep, value = line.partition(":")
            assert sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", name), f"{path}:{number}: not a field: {line}"
            current[name] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def lintian_list(name: str) -> List[str]:
    lines = Path("/usr/share/lintian/data/testsuite", name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_source_fields_and_autopkgtest() -> None:
    """Homepage and Vcs-* name the project; the testsuites and the tests' restrictions are ones lintian (and
    so autopkgtest) knows; every test is an executable script that runs check-config and doctor."""
    source = deb822_paragraphs(REPO / "debian" / "control")[0]
    assert source["Homepage"] == "https://github.com/shrinkd/shrinkd"
    assert source["Vcs-Git"] == source["Homepage"] + ".git" and source["Vcs-Browser"] == source["Homepage"]
    assert set(source["Testsuite"].replace(",", " ").split()) <= set(lintian_list("known-testsuites"))
    assert "autopkgtest-pkg-dkms" in source["Testsuite"]
    tests = deb822_paragraphs(REPO / "debian" / "tests" / "control")
    assert tests
    known = set(lintian_list("known-restrictions"))
    commands = ""
    for paragraph in tests:
        assert set(paragraph["Restrictions"].replace(",", " ").split()) <= known, paragraph
        assert paragraph["Depends"].split(",")[0].strip() == "shrinkd"
        for name in paragraph["Tests"].split():
            script = REPO / "debian" / "tests" / name
            assert os.access(script, os.X_OK), script
            assert run(["sh", "-n", str(script)]).returncode == 0, script
            commands += script.read_text()
    assert "shrinkd check-config /etc/shrinkd/shrinkd.yaml\n" in commands and "shrinkd doctor\n" in commands


def test_unit_is_placed_by_dh_installsystemd(debs: Dict[str, Path]) -> None:
    """debian/shrinkd.service is the tree's unit (a link), which dh_installsystemd installs and enables;
    no install file places it by hand."""
    link = REPO / "debian" / "shrinkd.service"
    assert link.is_symlink() and link.resolve() == UNIT.resolve()
    assert "systemd" not in (REPO / "debian" / "shrinkd.install").read_text()
    assert member(debs["shrinkd"], "/usr/lib/systemd/system/shrinkd.service") == UNIT.read_bytes()
