"""packaging/buildroot, the br2-external tree: its Kconfig and makefiles as Buildroot reads them.

What runs everywhere (CI included): Buildroot is on neither PyPI nor Debian, so
- kconfiglib (PyPI; Buildroot's own kconfig follows the same language) reads the tree's
  Config.in files under a top Kconfig in which the four Buildroot symbols they use
  (BUILDROOT_SYMBOLS) stand in for Buildroot's; the defconfig fragment then enables both
  packages, selects PyYAML, and cannot enable shrinkd without python3;
- GNU make reads external.mk and both package makefiles, with the package
  infrastructures (python-package, kernel-module, generic-package) as empty macros: the
  variables the infrastructures would take (site, versions, setup type, licence files,
  install commands) are checked against this tree, and shrinkd's post-install hooks are run
  into an empty target (bash completion only with BR2_PACKAGE_BASH_COMPLETION).
With SHRINKD_BUILDROOT (a Buildroot checkout), Buildroot's own utils/check-package on
every file of the tree (its Python needs python-magic and flake8), target-finalize's removals
the packages rely on, and `make printvars` / `show-info` of a qemu_x86_64 defconfig with
the fragment merged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from tests.vm import REPO, new_run_dir

TREE = REPO / "packaging" / "buildroot"
FRAGMENT = TREE / "shrinkd.fragment"
# Buildroot's symbols the tree refers to (package/python3, package/python-pyyaml,
# linux/Config.in, system/Config.in, arch/Config.in).
BUILDROOT_SYMBOLS = ("BR2_PACKAGE_PYTHON3", "BR2_PACKAGE_PYTHON_PYYAML", "BR2_PACKAGE_PYTHON3_ZLIB", "BR2_LINUX_KERNEL",
                     "BR2_INIT_SYSTEMD", "BR2_x86_64", "BR2_aarch64", "BR2_arm")
# The fragment leaves the architecture to the board's defconfig.
ARCHITECTURE = "BR2_x86_64=y\n"


def python_version() -> str:
    found = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert found
    return found.group(1)


def module_version() -> str:
    found = re.search(r'^PACKAGE_VERSION="?([^"\n]+)"?$', (REPO / "kmod" / "dkms.conf").read_text(), re.M)
    assert found
    return found.group(1)


def kconfig(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    kconfiglib = pytest.importorskip("kconfiglib", reason="kconfiglib (PyPI) is needed: run scripts/setup.sh")
    top = tmp / "Config.in"
    stand_ins = "".join(f'config {symbol}\n\tbool "{symbol} (Buildroot\'s)"\n\n' for symbol in BUILDROOT_SYMBOLS)
    top.write_text(f'mainmenu "shrinkd external tree"\n\n{stand_ins}'
                   'menu "External options"\nsource "$BR2_EXTERNAL_SHRINKD_PATH/Config.in"\nendmenu\n')
    monkeypatch.setenv("BR2_EXTERNAL_SHRINKD_PATH", str(TREE))
    monkeypatch.setenv("CONFIG_", "")  # Buildroot's symbols carry their BR2_ in their names, no CONFIG_ prefix
    return kconfiglib.Kconfig(str(top), warn_to_stderr=False)


def test_config_in_parses_without_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kconf = kconfig(tmp_path, monkeypatch)
    assert kconf.warnings == []
    ours = {name for name in kconf.syms if name.startswith("BR2_PACKAGE_SHRINK")}
    assert ours == {"BR2_PACKAGE_SHRINKD", "BR2_PACKAGE_SHRINKMEM"}
    referenced = {name for name in kconf.syms if name.startswith("BR2_") and name not in ours}
    assert referenced == set(BUILDROOT_SYMBOLS), "a new Buildroot symbol: check it exists and add it here"


def with_architecture(tmp: Path, fragment: str, architecture: str = ARCHITECTURE) -> str:
    config = tmp / "config"
    config.write_text(architecture + fragment)
    return str(config)


def test_fragment_enables_both_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kconf = kconfig(tmp_path, monkeypatch)
    kconf.load_config(with_architecture(tmp_path, FRAGMENT.read_text()))
    assert kconf.warnings == []
    for name in ("BR2_PACKAGE_SHRINKD", "BR2_PACKAGE_SHRINKMEM", "BR2_PACKAGE_PYTHON_PYYAML",
                 "BR2_PACKAGE_PYTHON3_ZLIB", "BR2_INIT_SYSTEMD"):
        assert kconf.syms[name].str_value == "y", name


@pytest.mark.parametrize("architecture, enabled", [("BR2_x86_64=y\n", "y"), ("BR2_aarch64=y\n", "y"),
                                                   ("BR2_arm=y\n", "y"), ("", "n")])
def test_module_only_where_kbuild_builds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, architecture: str,
                                            enabled: str) -> None:
    """shrinkmem depends on x86_64, aarch64 or arm (another architecture: none of the three set)."""
    kconf = kconfig(tmp_path, monkeypatch)
    kconf.load_config(with_architecture(tmp_path, FRAGMENT.read_text(), architecture))
    assert kconf.syms["BR2_PACKAGE_SHRINKMEM"].str_value == enabled
    assert kconf.syms["BR2_PACKAGE_SHRINKD"].str_value == "y"


def test_shrinkd_needs_python3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dependency is real: without python3 the fragment's BR2_PACKAGE_SHRINKD=y does not hold."""
    kconf = kconfig(tmp_path, monkeypatch)
    without = tmp_path / "without-python3"
    without.write_text(ARCHITECTURE + FRAGMENT.read_text().replace("BR2_PACKAGE_PYTHON3=y",
                                                                   "# BR2_PACKAGE_PYTHON3 is not set"))
    kconf.load_config(str(without))
    assert kconf.syms["BR2_PACKAGE_SHRINKD"].str_value == "n"
    assert kconf.syms["BR2_PACKAGE_SHRINKMEM"].str_value == "y"


STUB_INFRASTRUCTURE = """\
python-package =
KCONFIG_ENABLE_OPT = enable $(1);
kernel-module =
generic-package =
print-%:
\t$(info $($*))@:
# Buildroot's package/pkg-utils.mk: hooks run one after another, a newline apart.
define sep


endef
run-hooks:
\t$(foreach hook,$(SHRINKD_POST_INSTALL_TARGET_HOOKS),$($(hook))$(sep))
"""


def make_value(tmp: Path, name: str) -> str:
    stub = tmp / "stub.mk"
    stub.write_text(STUB_INFRASTRUCTURE)
    result = subprocess.run(
        ["make", "--no-print-directory", "-f", str(stub), "-f", str(TREE / "external.mk"), f"print-{name}",
         f"BR2_EXTERNAL_SHRINKD_PATH={TREE}", "INSTALL=install", "TARGET_DIR=/target"],
        capture_output=True, text=True, check=False, cwd=tmp,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is needed")
def test_makefiles_point_at_this_tree(tmp_path: Path) -> None:
    assert Path(make_value(tmp_path, "SHRINKD_TOPDIR")) == REPO.resolve()
    for package, version in (("SHRINKD", python_version()), ("SHRINKMEM", module_version())):
        assert make_value(tmp_path, f"{package}_VERSION") == version
        assert make_value(tmp_path, f"{package}_SITE_METHOD") == "local"
        assert Path(make_value(tmp_path, f"{package}_SITE")) == REPO.resolve()
        for licence in make_value(tmp_path, f"{package}_LICENSE_FILES").split():
            assert (REPO / licence).is_file(), licence
        assert "--exclude .vm" in make_value(tmp_path, f"{package}_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS")
    assert make_value(tmp_path, "SHRINKD_SETUP_TYPE") == "setuptools"
    assert (REPO / make_value(tmp_path, "SHRINKMEM_MODULE_SUBDIRS") / "Kbuild").is_file()


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is needed")
def test_install_commands_use_this_trees_files(tmp_path: Path) -> None:
    commands = make_value(tmp_path, "SHRINKD_INSTALL_CONFIG_AND_LAUNCHER") + make_value(
        tmp_path, "SHRINKD_INSTALL_INIT_SYSTEMD")
    assert make_value(tmp_path, "SHRINKD_POST_INSTALL_TARGET_HOOKS").split() == ["SHRINKD_INSTALL_CONFIG_AND_LAUNCHER"]
    for source, target in (
        ("packaging/bin/shrinkd", "/target/usr/bin/shrinkd"),
        ("config/shrinkd.yaml", "/target/etc/shrinkd/shrinkd.yaml"),
        ("packaging/udev/60-shrinkd.rules", "/target/usr/lib/udev/rules.d/60-shrinkd.rules"),
        ("packaging/systemd/shrinkd.service", "/target/usr/lib/systemd/system/shrinkd.service"),
    ):
        # $(@D), the package's build folder, is "." here
        assert re.search(rf"\./{re.escape(source)}\s+(\\\s+)?{re.escape(target)}", commands), source
        assert (REPO / source).is_file(), source
    # BusyBox init and sysvinit: the tree's init script, early (after syslogd's S01)
    assert re.search(r"\./packaging/init\.d/shrinkd\s+(\\\s+)?/target/etc/init\.d/S02shrinkd",
                     make_value(tmp_path, "SHRINKD_INSTALL_INIT_SYSV"))
    # the module is not loaded at boot: shrinkd loads it as it starts
    assert make_value(tmp_path, "SHRINKMEM_INSTALL_INIT_SYSTEMD") == ""
    assert "modules-load" not in (TREE / "package" / "shrinkmem" / "shrinkmem.mk").read_text()


def install_target(tmp: Path, *settings: str) -> Dict[str, bytes]:
    """shrinkd's post-install hooks run by make (from this tree, $(@D) being ".") into an empty
    target folder, with the given Buildroot settings; what they install, by path."""
    tmp.mkdir()
    stub = tmp / "stub.mk"
    stub.write_text(STUB_INFRASTRUCTURE)
    target = tmp / "target"
    result = subprocess.run(
        ["make", "--no-print-directory", "-f", str(stub), "-f", str(TREE / "external.mk"), "run-hooks",
         f"BR2_EXTERNAL_SHRINKD_PATH={TREE}", "INSTALL=install", f"TARGET_DIR={target}", *settings],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return {str(path.relative_to(target)): path.read_bytes() for path in target.rglob("*") if path.is_file()}


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is needed")
def test_bash_completion_only_with_bash_completion(tmp_path: Path) -> None:
    """Buildroot's practice (bubblewrap, casync, tio): completion only when BR2_PACKAGE_BASH_COMPLETION,
    since target-finalize removes /usr/share/bash-completion without bash; no manual pages or docs,
    since it removes /usr/share/man and /usr/share/doc from every target."""
    base = {"usr/bin/shrinkd", "etc/shrinkd/shrinkd.yaml", "usr/lib/udev/rules.d/60-shrinkd.rules"}
    assert set(install_target(tmp_path / "without")) == base
    installed = install_target(tmp_path / "with", "BR2_PACKAGE_BASH_COMPLETION=y")
    assert set(installed) == base | {"usr/share/bash-completion/completions/shrinkd"}
    assert installed["usr/share/bash-completion/completions/shrinkd"] == (
        REPO / "contrib" / "completion" / "shrinkd.bash").read_bytes()


def buildroot() -> Optional[Path]:
    found = os.environ.get("SHRINKD_BUILDROOT")
    return Path(found).resolve() if found else None


@pytest.mark.skipif(buildroot() is None,
                    reason="Buildroot is on neither PyPI nor Debian: set SHRINKD_BUILDROOT to a checkout to run "
                           "its check-package and printvars/show-info on the tree")
def test_buildroot_check_package_and_show_info() -> None:
    top = buildroot()
    assert top
    files = sorted(str(path.relative_to(TREE)) for path in TREE.rglob("*") if path.is_file())
    checked = subprocess.run([sys.executable, str(top / "utils" / "check-package"), "-b", *files], cwd=TREE,
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and "0 warnings generated" in checked.stdout + checked.stderr, (
        checked.stdout + checked.stderr)
    out = new_run_dir("buildroot-")
    env = dict(os.environ, BR2_EXTERNAL=str(TREE))

    def make(*args: str) -> str:
        result = subprocess.run(["make", "-s", f"O={out}", *args], cwd=top, env=env, capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return result.stdout

    # the symbol shrinkd.mk's completion depends on is Buildroot's, and target-finalize keeps
    # bash-completion's folder only with bash and drops the manual pages always (as the .mk says)
    assert "config BR2_PACKAGE_BASH_COMPLETION\n" in (top / "package" / "bash-completion" / "Config.in").read_text()
    finalize = (top / "Makefile").read_text()
    assert "rm -rf $(TARGET_DIR)/usr/man $(TARGET_DIR)/usr/share/man\n" in finalize
    assert "ifneq ($(BR2_PACKAGE_BASH),y)\n\trm -rf $(TARGET_DIR)/usr/share/bash-completion\n" in finalize
    make("qemu_x86_64_defconfig")
    with (out / ".config").open("a") as config:
        config.write(FRAGMENT.read_text())
    make("olddefconfig")
    enabled = (out / ".config").read_text()
    for line in FRAGMENT.read_text().split():
        assert line in enabled.split(), line
    values: Dict[str, str] = dict(
        line.split("=", 1) for line in make("printvars", "VARS=SHRINKD_VERSION SHRINKD_DEPENDENCIES "
                                                         "SHRINKMEM_VERSION SHRINKMEM_DEPENDENCIES").splitlines())
    assert values["SHRINKD_VERSION"] == python_version() and values["SHRINKMEM_VERSION"] == module_version()
    assert {"host-python-setuptools", "python3"} <= set(values["SHRINKD_DEPENDENCIES"].split())
    assert "linux" in values["SHRINKMEM_DEPENDENCIES"].split()
    info = json.loads(make("show-info"))
    assert info["shrinkd"]["version"] == python_version() and info["shrinkmem"]["version"] == module_version()
    assert info["shrinkd"]["license_files"] == ["COPYING"]


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is needed")
def test_module_turns_on_what_it_needs_in_the_kernel(tmp_path: Path) -> None:
    """CONFIG_HIBERNATION (after CONFIG_SWAP, which it depends on) for shrink_all_memory(), and the options
    of the kprobe path that finds it."""
    fixups = make_value(tmp_path, "SHRINKMEM_LINUX_CONFIG_FIXUPS")
    assert re.findall(r"enable (\w+);", fixups) == ["CONFIG_SWAP", "CONFIG_HIBERNATION", "CONFIG_KPROBES",
                                                     "CONFIG_KALLSYMS"]
