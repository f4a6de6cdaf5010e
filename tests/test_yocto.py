"""meta-shrinkd, the Yocto layer: oelint-adv finds nothing, and BitBake's own parser reads it.

What runs everywhere (CI included), with what PyPI gives:
- oelint-adv (PyPI) over layer.conf, both recipes and the kernel bbappend, for the layer's
  release series, in its strictest mode: no finding at all, and every inline suppression
  says why.
- BitBake's parser, from PyPI's bitbake-setup wheel (the `bb` library of BitBake), parses
  layer.conf, both recipes and the bbappend (tests/bitbake_parse.py). openembedded-core
  is on neither PyPI nor Debian, so the classes the recipes inherit (module, systemd,
  update-rc.d, python_setuptools_build_meta, bash-completion) are empty stand-ins and the few bitbake.conf definitions
  the recipes use (PN, PV, THISDIR, FILESPATH) are set by the script. Checked on the
  parsed values: every file:// of SRC_URI exists in this tree, the licence checksums
  match, RDEPENDS covers every module shrinkd imports, the versions match the project's,
  the kernel patch applies only when a machine opts in; each recipe's do_install, run by sh
  over this tree, installs the manual pages, bash completion and the docs' pictures.
What needs openembedded-core: with SHRINKD_OECORE (an openembedded-core checkout of the
layer's series) and SHRINKD_BITBAKE (BitBake of the same series), a real `bitbake -p` of
openembedded-core with the layer, and the recipes' values from tinfoil.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from tests.vm import REPO, new_run_dir

LAYER = REPO / "packaging" / "yocto" / "meta-shrinkd"
# The Yocto Project's current release series (6.0, April 2026), the layer's
# LAYERSERIES_COMPAT and the release oelint-adv checks against; and the long-term
# support series the layer also serves (5.0), whose bitbake.conf has no UNPACKDIR.
SERIES = "wrynose"
LTS_SERIES = "scarthgap"
STAND_IN_CLASSES = ("module", "python_setuptools_build_meta", "systemd", "update-rc.d", "bash-completion")
SHRINKD = "recipes-support/shrinkd/shrinkd_0.1.0.bb"
SHRINKMEM = "recipes-kernel/shrinkmem/shrinkmem_1.2.0.bb"
KERNEL_APPEND = "recipes-kernel/linux/linux-yocto_%.bbappend"

# Every module shrinkd imports, by the openembedded-core package that ships it
# (meta/recipes-devtools/python/python3/python3-manifest.json; built-in modules are
# part of the interpreter, in python3-core).
OE_PYTHON_PACKAGES = {
    "__future__": "python3-core", "argparse": "python3-core", "dataclasses": "python3-core",
    "errno": "python3-core", "fcntl": "python3-core", "marshal": "python3-core", "os": "python3-core",
    "pathlib": "python3-core", "platform": "python3-core", "select": "python3-core",
    "signal": "python3-core", "_signal": "python3-core", "struct": "python3-core", "sys": "python3-core",
    "time": "python3-core", "traceback": "python3-core", "typing": "python3-core",
    # lib-dynload/math.*.so is in python3-core's files; pwd is built into the interpreter.
    "math": "python3-core", "pwd": "python3-core",
    "_socket": "python3-io", "json": "python3-json", "yaml": "python3-pyyaml",
    # The tools (docs/tools.md): doctor reads /proc/config.gz, history handles dates.
    "contextlib": "python3-core", "stat": "python3-core", "io": "python3-core", "importlib": "python3-core",
    "gzip": "python3-compression", "datetime": "python3-datetime",
}
# The tools' optional libraries (pyproject extras), imported only by their commands and left
# out of the image: meta-python's python3-systemd, python3-pyudev, python3-matplotlib; shtab
# only generates the completion scripts kept in contrib/completion/ (never run on a board).
OPTIONAL = {"systemd", "pyudev", "matplotlib", "shtab"}

pytestmark = pytest.mark.skipif(
    shutil.which("oelint-adv", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    is None,
    reason="oelint-adv and bitbake-setup (PyPI) are needed: run scripts/setup.sh",
)


def oelint(*files: Path, cwd: Path = LAYER) -> subprocess.CompletedProcess[str]:
    tool = str(Path(sys.executable).parent / "oelint-adv")
    return subprocess.run(
        [tool, "--quiet", "--mode", "all", "--release", SERIES, "--relpaths", "--jobs", "1", *map(str, files)],
        capture_output=True, text=True, check=False, cwd=cwd,
    )


def layer_files(layer: Path = LAYER) -> List[Path]:
    return sorted([layer / "conf" / "layer.conf", *layer.glob("recipes-*/*/*.bb"), *layer.glob("recipes-*/*/*.bbappend")])


def test_oelint_adv_finds_nothing() -> None:
    result = oelint(*layer_files())
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_oelint_adv_finds_what_the_suppressions_hide(tmp_path: Path) -> None:
    """The check above can fail: without its suppressions, oelint-adv reports the missing HOMEPAGE."""
    copy = tmp_path / "meta-shrinkd"
    shutil.copytree(LAYER, copy)
    for recipe in copy.glob("recipes-*/*/*.bb"):
        recipe.write_text("".join(line for line in recipe.read_text().splitlines(True) if "nooelint" not in line))
    result = oelint(*layer_files(copy), cwd=copy)
    assert "oelint.var.mandatoryvar.HOMEPAGE" in result.stdout + result.stderr


def test_every_suppression_says_why() -> None:
    for path in layer_files():
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.startswith("# nooelint:"):
                around = lines[max(0, number - 3) : number] + lines[number + 1 : number + 4]
                reasons = [text for text in around if text.startswith("#") and "nooelint" not in text]
                assert reasons, f"{path}:{number + 1}: a suppression without a comment saying why"


def stand_in_classes(tmp: Path) -> Path:
    classes = tmp / "classes"
    classes.mkdir(parents=True)
    for name in STAND_IN_CLASSES:
        (classes / f"{name}.bbclass").write_text("")
    return tmp


def bitbake_parse(layer: Path, tmp: Path, *overrides: str) -> Dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "bitbake_parse.py"), str(layer), str(stand_in_classes(tmp)),
         *overrides],
        capture_output=True, text=True, check=False, cwd=tmp,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    parsed: Dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.fixture(scope="module")
def parsed() -> Dict[str, Any]:
    return bitbake_parse(LAYER, new_run_dir("bitbake-"))


def python_version() -> str:
    found = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert found
    return found.group(1)


def module_version() -> str:
    found = re.search(r'^PACKAGE_VERSION="?([^"\n]+)"?$', (REPO / "kmod" / "dkms.conf").read_text(), re.M)
    assert found
    return found.group(1)


def test_layer_conf(parsed: Dict[str, Any]) -> None:
    layer = parsed["layer"]
    assert layer["BBFILE_COLLECTIONS"].split() == ["shrinkd"]
    assert layer["LAYERSERIES_COMPAT_shrinkd"].split() == [LTS_SERIES, SERIES]
    assert layer["LAYERDEPENDS_shrinkd"].split() == ["core"]
    assert sorted(parsed["recipes"]) == [SHRINKMEM, SHRINKD]
    assert sorted(parsed["appends"]) == [KERNEL_APPEND]


def test_layer_readme_has_what_yocto_check_layer_wants() -> None:
    """openembedded-core's scripts/lib/checklayer (test_readme): a README at the top of the layer naming
    maintainers with an e-mail address and how to send patches; and what a user needs: the series, the
    dependencies, how to add the layer."""
    readmes = sorted(LAYER.glob("[Rr][Ee][Aa][Dd][Mm][Ee]*"))
    assert readmes
    text = readmes[0].read_text()
    assert "readme" not in text.lower()  # a README that names another is not checked further
    assert "maintainer" in text.lower() and "patch" in text.lower()
    assert re.search(r"[^@\s<]+@[^@\s>]+\.\w+", text)
    assert f"{LTS_SERIES}" in text and f"{SERIES}" in text and "bitbake-layers add-layer" in text
    assert "LAYERDEPENDS_shrinkd" in text and "sysvinit" in text


def test_recipe_versions_are_the_projects(parsed: Dict[str, Any]) -> None:
    assert (parsed["recipes"][SHRINKD]["PN"], parsed["recipes"][SHRINKD]["PV"]) == ("shrinkd", python_version())
    assert (parsed["recipes"][SHRINKMEM]["PN"], parsed["recipes"][SHRINKMEM]["PV"]) == ("shrinkmem", module_version())


def test_every_source_file_is_in_this_tree(parsed: Dict[str, Any]) -> None:
    for name, recipe in {**parsed["recipes"], **parsed["appends"]}.items():
        for path, found in recipe["files"].items():
            assert found is not None, f"{name}: SRC_URI file://{path} is not on FILESPATH"
            assert Path(found).resolve().is_relative_to(REPO), (name, found)


def source_dir(recipe: Dict[str, Any]) -> Path:
    """The recipe's S in this tree: S below UNPACKDIR, where the file:// entries land."""
    below = Path(recipe["S"]).relative_to("/work/sources")
    return REPO / below


def test_licence_checksums_match(parsed: Dict[str, Any]) -> None:
    for name, recipe in parsed["recipes"].items():
        entries = recipe["LIC_FILES_CHKSUM"].split()
        assert entries, name
        for entry in entries:
            path, *params = entry[len("file://") :].split(";")
            options = dict(param.split("=", 1) for param in params)
            lines = (source_dir(recipe) / path).read_bytes().splitlines(True)
            begin, end = int(options.get("beginline", 1)), int(options.get("endline", len(lines)))
            assert hashlib.md5(b"".join(lines[begin - 1 : end])).hexdigest() == options["md5"], (name, entry)


def imported_modules() -> Dict[str, str]:
    """Top-level modules shrinkd's code imports (not its own), with a file that imports each."""
    found: Dict[str, str] = {}
    for path in sorted((REPO / "shrinkd").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "shrinkd":
                    found.setdefault(top, str(path.relative_to(REPO)))
    return found


def test_rdepends_cover_every_import(parsed: Dict[str, Any]) -> None:
    modules = {module: path for module, path in imported_modules().items() if module not in OPTIONAL}
    unmapped = {module: path for module, path in modules.items() if module not in OE_PYTHON_PACKAGES}
    assert not unmapped, f"add these modules' openembedded-core packages to OE_PYTHON_PACKAGES: {unmapped}"
    needed = {OE_PYTHON_PACKAGES[module] for module in modules}
    assert set(parsed["recipes"][SHRINKD]["RDEPENDS:${PN}"].split()) == needed


def test_daemon_recipe_installs_the_service(parsed: Dict[str, Any]) -> None:
    recipe = parsed["recipes"][SHRINKD]
    assert [Path(cls).stem for cls in recipe["__inherit_cache"]] == ["python_setuptools_build_meta", "systemd",
                                                                     "update-rc.d", "bash-completion"]
    assert recipe["INITSCRIPT_NAME"] == "shrinkd"
    assert recipe["SYSTEMD_SERVICE:${PN}"].split() == ["shrinkd.service"]
    assert recipe["CONFFILES:${PN}"].split() == ["${sysconfdir}/shrinkd/shrinkd.yaml"]
    install = recipe["do_install"]
    for source, target in (
        ("packaging/systemd/shrinkd.service", "${systemd_system_unitdir}/shrinkd.service"),
        ("config/shrinkd.yaml", "${sysconfdir}/shrinkd/shrinkd.yaml"),
        ("packaging/udev/60-shrinkd.rules", "${nonarch_base_libdir}/udev/rules.d/60-shrinkd.rules"),
        ("packaging/bin/shrinkd", "${bindir}/shrinkd"),
    ):
        assert f"/work/sources/{source} ${{D}}{target}" in install, source
        assert source in recipe["files"], source


# openembedded-core's bitbake.conf paths, for running the recipes' do_install on this tree.
OE_PATHS = {"bindir": "/usr/bin", "sysconfdir": "/etc", "datadir": "/usr/share", "mandir": "/usr/share/man",
            "docdir": "/usr/share/doc", "systemd_system_unitdir": "/usr/lib/systemd/system",
            "nonarch_base_libdir": "/usr/lib"}


def run_install(recipe: Dict[str, Any], bpn: str, tmp: Path, sources: str = "/work/sources") -> Path:
    """The recipe's do_install as parsed (the inherited classes' parts are stand-ins: only the
    recipe's own lines), run by sh with this tree as the unpacked sources; the image it makes."""
    image = tmp / "image"
    (image / "usr" / "bin").mkdir(parents=True)  # python_setuptools_build_meta's install of the wheel makes it
    script = recipe["do_install"].replace(sources, str(REPO))
    env = dict(os.environ, D=str(image), BPN=bpn, **OE_PATHS)
    result = subprocess.run(["sh", "-e", "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return image


def test_daemon_recipe_installs_pages_completion_and_docs(parsed: Dict[str, Any], tmp_path: Path) -> None:
    """Manual pages in ${mandir} (${PN}-doc), bash completion where bash-completion.bbclass packages it,
    the docs with every docs/*.png beside them in ${docdir}/${BPN}, each the tree's file."""
    recipe = parsed["recipes"][SHRINKD]
    image = run_install(recipe, "shrinkd", tmp_path)
    pictures = sorted((REPO / "docs").glob("*.png"))
    assert pictures
    for target, source in [
        ("usr/share/man/man8/shrinkd.8", "man/shrinkd.8"),
        ("usr/share/man/man5/shrinkd.yaml.5", "man/shrinkd.yaml.5"),
        ("usr/share/bash-completion/completions/shrinkd", "contrib/completion/shrinkd.bash"),
        ("usr/share/doc/shrinkd/README.md", "README.md"),
        ("usr/share/doc/shrinkd/outcome.md", "docs/outcome.md"),
    ] + [(f"usr/share/doc/shrinkd/{picture.name}", f"docs/{picture.name}") for picture in pictures]:
        assert (image / target).read_bytes() == (REPO / source).read_bytes(), target
        assert any(source == path or source.startswith(path) for path in recipe["files"]), f"{source}: not in SRC_URI"
    # nothing moves the pages out of ${PN}-doc or the completion out of ${PN}-bash-completion
    assert not re.search(r"mandir|bash-completion", recipe["FILES:${PN}"])


def test_module_recipe_installs_its_manual_page(parsed: Dict[str, Any], tmp_path: Path) -> None:
    recipe = parsed["recipes"][SHRINKMEM]
    image = run_install(recipe, "shrinkmem", tmp_path)
    installed = sorted(str(path.relative_to(image)) for path in image.rglob("*") if path.is_file())
    assert installed == ["usr/share/man/man4/shrinkmem.4"]
    assert (image / installed[0]).read_bytes() == (REPO / "man" / "shrinkmem.4").read_bytes()
    assert "man/shrinkmem.4" in recipe["files"]


def test_daemon_recipe_installs_the_init_script_with_sysvinit(parsed: Dict[str, Any], tmp_path: Path) -> None:
    """With sysvinit in DISTRO_FEATURES, packaging/init.d/shrinkd as /etc/init.d/shrinkd (update-rc.d.bbclass
    registers INITSCRIPT_NAME after syslog); without it, no init script."""
    without = run_install(parsed["recipes"][SHRINKD], "shrinkd", tmp_path / "systemd")
    assert not (without / "etc" / "init.d").exists()
    recipe = bitbake_parse(LAYER, tmp_path / "sysvinit-parse", "DISTRO_FEATURES=sysvinit")["recipes"][SHRINKD]
    image = run_install(recipe, "shrinkd", tmp_path / "sysvinit")
    script = image / "etc" / "init.d" / "shrinkd"
    assert script.read_bytes() == (REPO / "packaging" / "init.d" / "shrinkd").read_bytes()
    assert os.access(script, os.X_OK)
    assert "packaging/init.d/shrinkd" in recipe["files"]
    assert recipe["INITSCRIPT_PARAMS"] == "start 25 2 3 4 5 . stop 15 0 1 6 ."


def test_recipes_parse_without_unpackdir(tmp_path: Path) -> None:
    """scarthgap's bitbake.conf has no UNPACKDIR: the file:// entries land in WORKDIR, and S and
    do_install follow them there (the current series: UNPACKDIR, as the other tests parse)."""
    recipes = bitbake_parse(LAYER, tmp_path / "parse", "UNPACKDIR=")["recipes"]
    assert recipes[SHRINKD]["S"] == "/work" and recipes[SHRINKMEM]["S"] == "/work/kmod"
    assert "UNPACKDIR" not in recipes[SHRINKD]["do_install"] + recipes[SHRINKMEM]["do_install"]
    image = run_install(recipes[SHRINKMEM], "shrinkmem", tmp_path / "module", sources="/work")
    assert (image / "usr/share/man/man4/shrinkmem.4").read_bytes() == (REPO / "man" / "shrinkmem.4").read_bytes()
    image = run_install(recipes[SHRINKD], "shrinkd", tmp_path / "daemon", sources="/work")
    assert (image / "usr/bin/shrinkd").read_bytes() == (REPO / "packaging" / "bin" / "shrinkd").read_bytes()


def test_module_recipe_only_for_the_kprobe_architectures(parsed: Dict[str, Any]) -> None:
    pattern = re.compile(parsed["recipes"][SHRINKMEM]["COMPATIBLE_HOST"])
    for host in ("x86_64-poky-linux", "aarch64-poky-linux", "arm-poky-linux-gnueabi"):
        assert pattern.match(host), host
    for host in ("powerpc64le-poky-linux", "riscv64-poky-linux", "i686-poky-linux", "mips-poky-linux"):
        assert not pattern.match(host), host


def test_module_recipe_is_not_loaded_at_boot(parsed: Dict[str, Any]) -> None:
    """A kernel the module refuses would fail the boot-time load at every boot: shrinkd loads it."""
    recipe = parsed["recipes"][SHRINKMEM]
    assert [Path(cls).stem for cls in recipe["__inherit_cache"]] == ["module"]
    assert recipe["KERNEL_MODULE_AUTOLOAD"] == ""
    assert source_dir(recipe) == REPO / "kmod" and (source_dir(recipe) / "Kbuild").is_file()


def test_kernel_patch_only_when_the_machine_opts_in(parsed: Dict[str, Any]) -> None:
    assert parsed["appends"][KERNEL_APPEND]["SRC_URI"].split() == []
    opted = bitbake_parse(LAYER, new_run_dir("bitbake-export-"), "shrinkmem-export")["appends"][KERNEL_APPEND]
    assert opted["SRC_URI"].split() == ["file://export-shrink_all_memory.patch"]
    found = opted["files"]["export-shrink_all_memory.patch"]
    assert found and Path(found).read_bytes() == (REPO / "kmod" / "patches" / "export-shrink_all_memory.patch").read_bytes()


def test_parse_reports_a_missing_source_file(tmp_path: Path) -> None:
    """The file check can fail: a SRC_URI entry that is not in the tree resolves to nothing."""
    copy = tmp_path / "meta-shrinkd"
    shutil.copytree(LAYER, copy)
    # the copy is one level deeper than the layer: point its recipes at the real tree
    for recipe in copy.glob("recipes-*/*/*.bb"):
        text = recipe.read_text().replace('"${THISDIR}/../../../../..:"', f'"{REPO}:"')
        recipe.write_text(text.replace("file://COPYING ", "file://COPYING file://no-such-file "))
    recipes = bitbake_parse(copy, tmp_path / "run")["recipes"]
    assert recipes[SHRINKD]["files"]["COPYING"] is not None
    assert recipes[SHRINKD]["files"]["no-such-file"] is None


TINFOIL = r"""
import json, sys
sys.path.insert(0, sys.argv[1] + "/lib")
import bb.tinfoil
out = {}
with bb.tinfoil.Tinfoil() as tinfoil:
    tinfoil.prepare(config_only=False, quiet=2)
    for pn in ("shrinkd", "shrinkmem"):
        d = tinfoil.parse_recipe(pn)
        out[pn] = {name: d.getVar(name) or "" for name in (
            "PV", "S", "RDEPENDS:" + pn, "SYSTEMD_SERVICE:" + pn, "CONFFILES:" + pn, "KERNEL_MODULE_AUTOLOAD",
            "DEPENDS", "FILESPATH")}
        out[pn]["inherits"] = [c.rsplit("/", 1)[-1] for c in d.getVar("__inherit_cache") or []]
json.dump(out, sys.stdout)
"""


def oe_checkouts() -> Optional[Dict[str, Path]]:
    core, bitbake = os.environ.get("SHRINKD_OECORE"), os.environ.get("SHRINKD_BITBAKE")
    if not core or not bitbake:
        return None
    return {"core": Path(core).resolve(), "bitbake": Path(bitbake).resolve()}


@pytest.mark.skipif(oe_checkouts() is None,
                    reason="openembedded-core is on neither PyPI nor Debian: set SHRINKD_OECORE and SHRINKD_BITBAKE "
                           "to checkouts of the layer's series to parse against it")
def test_bitbake_parses_openembedded_core_with_the_layer() -> None:
    checkouts = oe_checkouts()
    assert checkouts
    build = new_run_dir("oe-build-")
    (build / "conf").mkdir()
    (build / "conf" / "bblayers.conf").write_text(
        f'BBPATH = "${{TOPDIR}}"\nBBFILES ?= ""\nBBLAYERS = "{checkouts["core"] / "meta"} {LAYER}"\n')
    # Parse only: BitBake's sanity class refuses root and wants every build host tool.
    (build / "conf" / "local.conf").write_text(
        'MACHINE = "qemux86-64"\nINIT_MANAGER = "systemd"\nINHERIT:remove = "sanity uninative"\n'
        'HOSTTOOLS:remove = "chrpath gawk"\n')
    # BitBake insists on the en_US.UTF-8 locale: compiled here, so the machine's are left alone
    locales = build / "locale"
    locales.mkdir()
    made = subprocess.run(["localedef", "-i", "en_US", "-f", "UTF-8", str(locales / "en_US.UTF-8")], check=False,
                          capture_output=True, text=True)
    assert (locales / "en_US.UTF-8").is_dir(), made.stdout + made.stderr
    env = {"PATH": f"{checkouts['bitbake'] / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "en_US.UTF-8", "LOCPATH": str(locales), "BB_ENV_PASSTHROUGH_ADDITIONS": "LOCPATH",
           "BBPATH": str(build)}
    parse = subprocess.run(["bitbake", "-p"], cwd=build, env=env, capture_output=True, text=True, check=False)
    assert parse.returncode == 0, parse.stdout[-3000:] + parse.stderr[-3000:]
    assert re.search(r"Parsing of \d+ \.bb files complete .* 0 errors", parse.stdout), parse.stdout[-2000:]
    values = subprocess.run(["/usr/bin/python3", "-c", TINFOIL, str(checkouts["bitbake"])], cwd=build, env=env,
                            capture_output=True, text=True, check=False)
    assert values.returncode == 0, values.stderr[-3000:]
    found = json.loads(values.stdout)
    assert found["shrinkd"]["PV"] == python_version() and found["shrinkmem"]["PV"] == module_version()
    assert "python_setuptools_build_meta.bbclass" in found["shrinkd"]["inherits"]
    assert "systemd.bbclass" in found["shrinkd"]["inherits"]
    assert found["shrinkd"]["SYSTEMD_SERVICE:shrinkd"] == "shrinkd.service"
    assert set(found["shrinkd"]["RDEPENDS:shrinkd"].split()) >= {OE_PYTHON_PACKAGES[m] for m in imported_modules()
                                                                  if m not in OPTIONAL}
    # the file:// entries' folder, UNPACKDIR or (scarthgap) WORKDIR, resolved in both recipes
    assert found["shrinkmem"]["S"].endswith("/kmod") and "${" not in found["shrinkmem"]["S"] + found["shrinkd"]["S"]
    assert "module.bbclass" in found["shrinkmem"]["inherits"]
    assert "shrinkmem" not in found["shrinkmem"]["KERNEL_MODULE_AUTOLOAD"].split()
