"""meta-shrinkd, the Yocto layer: oelint-adv finds nothing, and BitBake's own parser reads it.

What runs everywhere (CI included), with what PyPI gives:
- oelint-adv (PyPI) over layer.conf, both recipes and the kernel bbappend, for the layer's
  release series, in its strictest mode: no finding at all, and every inline suppression
  says why.
- BitBake's parser, from PyPI's bitbake-setup wheel (the `bb` library of BitBake), parses
  layer.conf, both recipes and the bbappend (tests/bitbake_parse.py). openembedded-core
  is on neither PyPI nor Debian, so the classes the recipes inherit (module, systemd,
  update-rc.d, python_setuptools_build_meta, bash-completion) are empty stand-ins and the few bitbake.conf definitions
  the recipes use (PN, PV, BP, S, THISDIR, FILESPATH) are set by the script. Checked on the
  parsed values: the sources are this repository's git URL at a SRCREV in this branch's
  history whose tree holds the recipes' versions and every file they install, every file://
  entry resolves inside the layer, the licence checksums match the files at SRCREV,
  RDEPENDS covers every module shrinkd imports, the versions match the project's, the
  kernel patch applies only when a machine opts in; each recipe's do_install, run by sh
  over the tree at SRCREV (git archive), installs the manual pages, bash completion and
  the docs' pictures. scripts/yocto_srcrev.py, which moves SRCREV, is run on copies of
  the layer.
- yocto-check-layer's checks that need no openembedded-core: the README's sections, a
  SECURITY file, every patch's Upstream-Status, layer.conf's fields.
What needs openembedded-core: with SHRINKD_OECORE (an openembedded-core checkout of the
layer's series) and SHRINKD_BITBAKE (BitBake of the same series), a real `bitbake -p` of
openembedded-core with the layer, the recipes' values from tinfoil, and with the layer
README's EXTERNALSRC settings the working tree as S.
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
from typing import Any, Dict, List, Optional, Tuple

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
SOURCE_INC = "recipes-support/shrinkd/shrinkd-source.inc"
KMOD_PATCH = REPO / "kmod" / "patches" / "export-shrink_all_memory.patch"
LAYER_PATCH = LAYER / "recipes-kernel" / "linux" / "files" / "export-shrink_all_memory.patch"
SRCREV_SCRIPT = REPO / "scripts" / "yocto_srcrev.py"

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
    """What oelint-adv is given (it reads the recipes' includes through them)."""
    return sorted([layer / "conf" / "layer.conf", *layer.glob("recipes-*/*/*.bb"), *layer.glob("recipes-*/*/*.bbappend")])


def metadata_files(layer: Path = LAYER) -> List[Path]:
    return sorted([*layer_files(layer), *layer.glob("recipes-*/*/*.inc")])


def test_oelint_adv_finds_nothing() -> None:
    result = oelint(*layer_files())
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_oelint_adv_finds_what_the_suppressions_hide(tmp_path: Path) -> None:
    """The check above can fail: without its suppressions, oelint-adv reports the recipes' missing BBCLASSEXTEND."""
    copy = tmp_path / "meta-shrinkd"
    shutil.copytree(LAYER, copy)
    for recipe in metadata_files(copy):
        recipe.write_text("".join(line for line in recipe.read_text().splitlines(True) if "nooelint" not in line))
    result = oelint(*layer_files(copy), cwd=copy)
    assert "oelint.var.bbclassextend" in result.stdout + result.stderr


def test_every_suppression_says_why() -> None:
    for path in metadata_files():
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


def python_version(text: Optional[str] = None) -> str:
    found = re.search(r'^version = "([^"]+)"$', text or (REPO / "pyproject.toml").read_text(), re.M)
    assert found
    return found.group(1)


def module_version(text: Optional[str] = None) -> str:
    found = re.search(r'^PACKAGE_VERSION="?([^"\n]+)"?$', text or (REPO / "kmod" / "dkms.conf").read_text(), re.M)
    assert found
    return found.group(1)


def git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=False)


def at_srcrev(srcrev: str, path: str) -> bytes:
    """A file of the tree at SRCREV (git show), as the recipes' fetch gets it."""
    shown = git("show", f"{srcrev}:{path}")
    assert shown.returncode == 0, f"{path} is not in the tree at SRCREV {srcrev}: {shown.stderr.decode().strip()}"
    return shown.stdout


def debian_field(name: str) -> str:
    found = re.search(rf"^{name}: (\S+)$", (REPO / "debian" / "control").read_text(), re.M)
    assert found, name
    return found.group(1)


def test_layer_conf(parsed: Dict[str, Any]) -> None:
    """What yocto-check-layer's detection and openembedded-core's layer checks read from conf/layer.conf: one
    collection, a pattern matching only the layer's files, a priority, the release series, the dependency."""
    layer = parsed["layer"]
    assert layer["BBFILE_COLLECTIONS"].split() == ["shrinkd"]
    assert layer["BBFILE_PATTERN_shrinkd"] == f"^{LAYER}/"
    assert 1 <= int(layer["BBFILE_PRIORITY_shrinkd"]) <= 99 and int(layer["LAYERVERSION_shrinkd"]) >= 1
    assert layer["LAYERSERIES_COMPAT_shrinkd"].split() == [LTS_SERIES, SERIES]
    assert layer["LAYERDEPENDS_shrinkd"].split() == ["core"]
    assert str(LAYER) in layer["BBPATH"].split(":")
    for pattern in layer["BBFILES"].split():
        assert re.match(layer["BBFILE_PATTERN_shrinkd"], pattern), pattern
    assert sorted(parsed["recipes"]) == [SHRINKMEM, SHRINKD]
    assert sorted(parsed["appends"]) == [KERNEL_APPEND]
    assert not (LAYER / "conf" / "machine").exists() and not (LAYER / "conf" / "distro").exists()  # a software layer


def test_layer_readme_has_what_yocto_check_layer_wants() -> None:
    """openembedded-core's scripts/lib/checklayer (test_readme): a README at the top of the layer naming
    maintainers with an e-mail address and how to send patches; and what a user needs: the series, the
    dependencies, how to add the layer, where the sources come from and how to build a working tree."""
    readmes = sorted(LAYER.glob("[Rr][Ee][Aa][Dd][Mm][Ee]*"))
    assert readmes
    text = readmes[0].read_text()
    assert "readme" not in text.lower()  # a README that names another is not checked further
    assert "maintainer" in text.lower() and "patch" in text.lower()
    assert re.search(r"[^@\s<]+@[^@\s>]+\.\w+", text)
    assert f"{LTS_SERIES}" in text and f"{SERIES}" in text and "bitbake-layers add-layer" in text
    assert "LAYERDEPENDS_shrinkd" in text and "sysvinit" in text
    headings = re.findall(r"^## (.+)$", text, re.M)
    for wanted in ("Dependencies", "Sources", "Maintainers and patches", "yocto-check-layer"):
        assert any(heading.startswith(wanted) for heading in headings), (wanted, headings)
    assert "SRCREV" in text and "scripts/yocto_srcrev.py" in text and "EXTERNALSRC" in text


def test_layer_has_a_security_file() -> None:
    """yocto-check-layer's test_security: a SECURITY file with content in the layer (or the repository's top)."""
    found = sorted([*LAYER.glob("SECURITY"), *LAYER.glob("SECURITY.*")])
    assert found and found[0].stat().st_size > 0
    assert re.search(r"[^@\s<]+@[^@\s>]+\.\w+", found[0].read_text())


def test_every_patch_has_an_upstream_status() -> None:
    """yocto-check-layer's test_patches_upstream_status, with openembedded-core's pattern (meta/lib/oe/qa.py)."""
    patches = sorted(LAYER.rglob("*.patch"))
    assert patches
    strict = re.compile(r"^Upstream-Status: (Pending|Submitted|Denied|Inappropriate|Backport|Inactive-Upstream)( .+)?$",
                        re.M)
    for patch in patches:
        assert strict.search(patch.read_text(encoding="utf-8", errors="ignore")), patch


def test_recipe_versions_are_the_projects(parsed: Dict[str, Any]) -> None:
    assert (parsed["recipes"][SHRINKD]["PN"], parsed["recipes"][SHRINKD]["PV"]) == ("shrinkd", python_version()), \
        "pyproject.toml's version moved: after the release commit, run scripts/yocto_srcrev.py"
    assert (parsed["recipes"][SHRINKMEM]["PN"], parsed["recipes"][SHRINKMEM]["PV"]) == ("shrinkmem", module_version()), \
        "kmod/dkms.conf's version moved: after the release commit, run scripts/yocto_srcrev.py"


def test_sources_are_the_projects_repository_at_srcrev(parsed: Dict[str, Any]) -> None:
    """Both recipes fetch the repository debian/control names (Vcs-Git), at one SRCREV that is a commit of this
    branch's history: nothing from outside the layer."""
    url = debian_field("Vcs-Git")
    for name in (SHRINKD, SHRINKMEM):
        recipe = parsed["recipes"][name]
        assert recipe["files"] == {}, name
        assert len(recipe["git"]) == 1 and len(recipe["SRC_URI"].split()) == 1, recipe["SRC_URI"]
        entry = recipe["git"][0]
        assert f"{entry['protocol']}://{entry['url']}" == url and entry["branch"] == "main", entry
        assert entry["destsuffix"] == recipe["BP"], entry
        assert recipe["HOMEPAGE"] == debian_field("Homepage")
        assert re.fullmatch(r"[0-9a-f]{40}", recipe["SRCREV"]), recipe["SRCREV"]
    srcrev = parsed["recipes"][SHRINKD]["SRCREV"]
    assert parsed["recipes"][SHRINKMEM]["SRCREV"] == srcrev
    assert git("cat-file", "-e", f"{srcrev}^{{commit}}").returncode == 0, \
        f"SRCREV {srcrev} is not a commit of this repository (a shallow clone lacks it: fetch the history)"
    assert git("merge-base", "--is-ancestor", srcrev, "HEAD").returncode == 0, f"SRCREV {srcrev} is not in HEAD's history"


def test_srcrev_holds_the_recipes_versions(parsed: Dict[str, Any]) -> None:
    """The recipes' versions are those of the tree they fetch: a release that moves the versions moves SRCREV."""
    srcrev = parsed["recipes"][SHRINKD]["SRCREV"]
    assert python_version(at_srcrev(srcrev, "pyproject.toml").decode()) == parsed["recipes"][SHRINKD]["PV"], \
        "SRCREV lags the recipe's version: run scripts/yocto_srcrev.py"
    assert module_version(at_srcrev(srcrev, "kmod/dkms.conf").decode()) == parsed["recipes"][SHRINKMEM]["PV"], \
        "SRCREV lags the recipe's version: run scripts/yocto_srcrev.py"


def tree_root(recipe: Dict[str, Any]) -> str:
    """Where the git fetcher unpacks the tree, as the parsed paths name it."""
    return f"{recipe['unpackroot']}/{recipe['git'][0]['destsuffix']}"


def source_subdir(recipe: Dict[str, Any]) -> str:
    """The recipe's S below the fetched tree ('' for the tree itself)."""
    below = os.path.relpath(recipe["S"], tree_root(recipe))
    assert not below.startswith(".."), (recipe["S"], tree_root(recipe))
    return "" if below == "." else below


def test_srcrev_has_every_file_the_recipes_read(parsed: Dict[str, Any]) -> None:
    """Each path below the fetched tree that a recipe's do_install reads is in the tree at SRCREV: a recipe
    that installs a new file waits for a SRCREV that has it."""
    srcrev = parsed["recipes"][SHRINKD]["SRCREV"]
    tree = git("ls-tree", "-r", "--name-only", srcrev).stdout.decode().splitlines()
    for name, recipe in parsed["recipes"].items():
        read = re.findall(rf"{re.escape(tree_root(recipe))}/(\S+)", recipe["do_install"])
        assert read, name
        for path in read:
            wanted = os.path.normpath(path)
            assert any(Path(entry).match(wanted) and entry.count("/") == wanted.count("/") for entry in tree), \
                f"{name} installs {wanted}, which the tree at SRCREV {srcrev[:12]} lacks: run scripts/yocto_srcrev.py"


def test_every_source_file_is_in_the_layer(parsed: Dict[str, Any]) -> None:
    """Every file:// entry, the kernel patch's included (it is applied only when a machine opts in), resolves
    inside the layer: the layer copied on its own still finds them."""
    opted = bitbake_parse(LAYER, new_run_dir("bitbake-export-"), "shrinkmem-export")
    entries = 0
    for name, recipe in {**parsed["recipes"], **parsed["appends"], **opted["appends"]}.items():
        for path, found in recipe["files"].items():
            entries += 1
            assert found is not None, f"{name}: SRC_URI file://{path} is not on FILESPATH"
            assert Path(found).resolve().is_relative_to(LAYER), (name, found)
        assert f"{LAYER}/../" not in recipe["FILESEXTRAPATHS"] and "/../../" not in recipe["FILESEXTRAPATHS"], name
    assert entries >= 1


def test_licence_checksums_match_the_tree_at_srcrev(parsed: Dict[str, Any]) -> None:
    for name, recipe in parsed["recipes"].items():
        entries = recipe["LIC_FILES_CHKSUM"].split()
        assert entries, name
        for entry in entries:
            path, *params = entry[len("file://") :].split(";")
            options = dict(param.split("=", 1) for param in params)
            text = at_srcrev(recipe["SRCREV"], os.path.normpath(os.path.join(source_subdir(recipe), path)))
            lines = text.splitlines(True)
            begin, end = int(options.get("beginline", 1)), int(options.get("endline", len(lines)))
            assert hashlib.md5(b"".join(lines[begin - 1 : end])).hexdigest() == options["md5"], (name, entry)


@pytest.fixture(scope="module")
def srcrev_tree(parsed: Dict[str, Any]) -> Path:
    """The tree at SRCREV, as the recipes' git fetch unpacks it (git archive: no network)."""
    tree = new_run_dir("srcrev-") / "tree"
    tree.mkdir()
    archive = git("archive", "--format=tar", parsed["recipes"][SHRINKD]["SRCREV"])
    assert archive.returncode == 0, archive.stderr.decode()
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


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
        assert f"{tree_root(recipe)}/{source} ${{D}}{target}" in install, source


# openembedded-core's bitbake.conf paths, for running the recipes' do_install on the tree at SRCREV.
OE_PATHS = {"bindir": "/usr/bin", "sysconfdir": "/etc", "datadir": "/usr/share", "mandir": "/usr/share/man",
            "docdir": "/usr/share/doc", "systemd_system_unitdir": "/usr/lib/systemd/system",
            "nonarch_base_libdir": "/usr/lib"}


def run_install(recipe: Dict[str, Any], bpn: str, tmp: Path, tree: Path) -> Path:
    """The recipe's do_install as parsed (the inherited classes' parts are stand-ins: only the
    recipe's own lines), run by sh with TREE as the fetched sources; the image it makes."""
    image = tmp / "image"
    (image / "usr" / "bin").mkdir(parents=True)  # python_setuptools_build_meta's install of the wheel makes it
    script = recipe["do_install"].replace(tree_root(recipe), str(tree))
    env = dict(os.environ, D=str(image), BPN=bpn, **OE_PATHS)
    result = subprocess.run(["sh", "-e", "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return image


def test_daemon_recipe_installs_pages_completion_and_docs(parsed: Dict[str, Any], srcrev_tree: Path,
                                                          tmp_path: Path) -> None:
    """Manual pages in ${mandir} (${PN}-doc), bash completion where bash-completion.bbclass packages it,
    the docs with every docs/*.png beside them in ${docdir}/${BPN}, each the file of the tree at SRCREV."""
    recipe = parsed["recipes"][SHRINKD]
    image = run_install(recipe, "shrinkd", tmp_path, srcrev_tree)
    pictures = sorted((srcrev_tree / "docs").glob("*.png"))
    assert pictures
    for target, source in [
        ("usr/share/man/man8/shrinkd.8", "man/shrinkd.8"),
        ("usr/share/man/man5/shrinkd.yaml.5", "man/shrinkd.yaml.5"),
        ("usr/share/bash-completion/completions/shrinkd", "contrib/completion/shrinkd.bash"),
        ("usr/share/doc/shrinkd/README.md", "README.md"),
        ("usr/share/doc/shrinkd/outcome.md", "docs/outcome.md"),
    ] + [(f"usr/share/doc/shrinkd/{picture.name}", f"docs/{picture.name}") for picture in pictures]:
        assert (image / target).read_bytes() == (srcrev_tree / source).read_bytes(), target
    # nothing moves the pages out of ${PN}-doc or the completion out of ${PN}-bash-completion
    assert not re.search(r"mandir|bash-completion", recipe["FILES:${PN}"])


def test_module_recipe_installs_its_manual_page(parsed: Dict[str, Any], srcrev_tree: Path, tmp_path: Path) -> None:
    recipe = parsed["recipes"][SHRINKMEM]
    image = run_install(recipe, "shrinkmem", tmp_path, srcrev_tree)
    installed = sorted(str(path.relative_to(image)) for path in image.rglob("*") if path.is_file())
    assert installed == ["usr/share/man/man4/shrinkmem.4"]
    assert (image / installed[0]).read_bytes() == (srcrev_tree / "man" / "shrinkmem.4").read_bytes()


def test_daemon_recipe_installs_the_init_script_with_sysvinit(parsed: Dict[str, Any], srcrev_tree: Path,
                                                              tmp_path: Path) -> None:
    """With sysvinit in DISTRO_FEATURES, packaging/init.d/shrinkd as /etc/init.d/shrinkd (update-rc.d.bbclass
    registers INITSCRIPT_NAME after syslog); without it, no init script."""
    without = run_install(parsed["recipes"][SHRINKD], "shrinkd", tmp_path / "systemd", srcrev_tree)
    assert not (without / "etc" / "init.d").exists()
    recipe = bitbake_parse(LAYER, tmp_path / "sysvinit-parse", "DISTRO_FEATURES=sysvinit")["recipes"][SHRINKD]
    image = run_install(recipe, "shrinkd", tmp_path / "sysvinit", srcrev_tree)
    script = image / "etc" / "init.d" / "shrinkd"
    assert script.read_bytes() == (srcrev_tree / "packaging" / "init.d" / "shrinkd").read_bytes()
    assert os.access(script, os.X_OK)
    assert recipe["INITSCRIPT_PARAMS"] == "start 25 2 3 4 5 . stop 15 0 1 6 ."


def test_recipes_parse_without_unpackdir(srcrev_tree: Path, tmp_path: Path) -> None:
    """scarthgap's bitbake.conf has no UNPACKDIR and its S is ${WORKDIR}/${BP}: the tree lands in WORKDIR/${BP}
    (destsuffix), and S and do_install follow it there (the current series: UNPACKDIR, as the other tests parse)."""
    recipes = bitbake_parse(LAYER, tmp_path / "parse", "UNPACKDIR=")["recipes"]
    daemon, module = recipes[SHRINKD], recipes[SHRINKMEM]
    assert daemon["S"] == tree_root(daemon) == f"/work/shrinkd-{python_version()}"
    assert module["S"] == f"{tree_root(module)}/kmod" == f"/work/shrinkmem-{module_version()}/kmod"
    assert "UNPACKDIR" not in daemon["do_install"] + module["do_install"]
    image = run_install(module, "shrinkmem", tmp_path / "module", srcrev_tree)
    assert (image / "usr/share/man/man4/shrinkmem.4").read_bytes() == (srcrev_tree / "man" / "shrinkmem.4").read_bytes()
    image = run_install(daemon, "shrinkd", tmp_path / "daemon", srcrev_tree)
    assert (image / "usr/bin/shrinkd").read_bytes() == (srcrev_tree / "packaging" / "bin" / "shrinkd").read_bytes()


def test_module_recipe_only_for_the_kprobe_architectures(parsed: Dict[str, Any]) -> None:
    pattern = re.compile(parsed["recipes"][SHRINKMEM]["COMPATIBLE_HOST"])
    for host in ("x86_64-poky-linux", "aarch64-poky-linux", "arm-poky-linux-gnueabi"):
        assert pattern.match(host), host
    for host in ("powerpc64le-poky-linux", "riscv64-poky-linux", "i686-poky-linux", "mips-poky-linux"):
        assert not pattern.match(host), host


def test_module_recipe_is_not_loaded_at_boot(parsed: Dict[str, Any], srcrev_tree: Path) -> None:
    """A kernel the module refuses would fail the boot-time load at every boot: shrinkd loads it."""
    recipe = parsed["recipes"][SHRINKMEM]
    assert [Path(cls).stem for cls in recipe["__inherit_cache"]] == ["module"]
    assert recipe["KERNEL_MODULE_AUTOLOAD"] == ""
    assert source_subdir(recipe) == "kmod" and (srcrev_tree / "kmod" / "Kbuild").is_file()


def test_kernel_patch_only_when_the_machine_opts_in(parsed: Dict[str, Any]) -> None:
    assert parsed["appends"][KERNEL_APPEND]["SRC_URI"].split() == []
    opted = bitbake_parse(LAYER, new_run_dir("bitbake-export-"), "shrinkmem-export")["appends"][KERNEL_APPEND]
    assert opted["SRC_URI"].split() == ["file://export-shrink_all_memory.patch"]
    assert opted["files"]["export-shrink_all_memory.patch"] == str(LAYER_PATCH)


def test_kernel_patch_is_kmods(parsed: Dict[str, Any]) -> None:
    """The layer's copy of kmod/patches/export-shrink_all_memory.patch is that patch plus the trailers
    openembedded-core wants (Upstream-Status, Signed-off-by): a change to kmod's patch is copied here."""
    trailers = ("Upstream-Status:", "Signed-off-by:")
    copy = LAYER_PATCH.read_text().splitlines(True)
    assert [line.split()[0] for line in copy if line.startswith(trailers)] == list(trailers)
    assert "".join(line for line in copy if not line.startswith(trailers)) == KMOD_PATCH.read_text(), \
        f"{LAYER_PATCH.relative_to(REPO)} differs from {KMOD_PATCH.relative_to(REPO)}: copy the change"


def test_parse_reports_a_missing_source_file(tmp_path: Path) -> None:
    """The file check can fail: a file:// entry that is not in the layer resolves to nothing, and the layer
    copied elsewhere on its own still finds its patch."""
    copy = tmp_path / "meta-shrinkd"
    shutil.copytree(LAYER, copy)
    append = copy / KERNEL_APPEND
    append.write_text(append.read_text().replace(".patch\"", ".patch file://no-such-file\""))
    files = bitbake_parse(copy, tmp_path / "run", "shrinkmem-export")["appends"][KERNEL_APPEND]["files"]
    assert files["export-shrink_all_memory.patch"] == str(copy / LAYER_PATCH.relative_to(LAYER))
    assert files["no-such-file"] is None


def srcrev_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SRCREV_SCRIPT), *args], capture_output=True, text=True, check=False)


def layer_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "meta-shrinkd"
    shutil.copytree(LAYER, copy)
    return copy


def test_srcrev_script_points_the_layer_at_a_commit(parsed: Dict[str, Any], tmp_path: Path) -> None:
    """scripts/yocto_srcrev.py REV: SRCREV becomes REV's commit and the recipes take the versions of REV's tree
    (a recipe named after an older version is renamed)."""
    copy = layer_copy(tmp_path)
    (copy / SHRINKD).rename(copy / "recipes-support" / "shrinkd" / "shrinkd_0.0.1.bb")
    head = git("rev-parse", "HEAD").stdout.decode().strip()
    result = srcrev_script("HEAD", "--layer", str(copy))
    assert result.returncode == 0, result.stderr
    assert f'SRCREV = "{head}"' in (copy / SOURCE_INC).read_text()
    assert (copy / "recipes-support" / "shrinkd" / f"shrinkd_{python_version()}.bb").is_file()
    assert not (copy / "recipes-support" / "shrinkd" / "shrinkd_0.0.1.bb").exists()
    assert (copy / "recipes-kernel" / "shrinkmem" / f"shrinkmem_{module_version()}.bb").is_file()
    assert parsed["recipes"][SHRINKD]["SRCREV"] in (LAYER / SOURCE_INC).read_text()  # the layer itself untouched


def test_srcrev_script_refuses_a_commit_without_the_installed_files(tmp_path: Path) -> None:
    """A commit before packaging/init.d/shrinkd existed lacks a file the daemon's do_install reads: nothing
    changes, and one line says which file."""
    added = git("log", "--diff-filter=A", "--format=%H", "--", "packaging/init.d/shrinkd").stdout.decode().split()
    assert added, "packaging/init.d/shrinkd has no history here (a shallow clone?)"
    copy = layer_copy(tmp_path)
    before = (copy / SOURCE_INC).read_text()
    result = srcrev_script(f"{added[-1]}~1", "--layer", str(copy))
    assert result.returncode == 1 and result.stdout == ""
    parent = git("rev-parse", f"{added[-1]}~1").stdout.decode().strip()
    assert result.stderr == (f"yocto_srcrev: {Path(SHRINKD).name} reads packaging/init.d/shrinkd, which is not in "
                             f"{parent[:12]}'s tree\n")
    assert (copy / SOURCE_INC).read_text() == before


def test_srcrev_script_refuses_a_changed_licence(tmp_path: Path) -> None:
    copy = layer_copy(tmp_path)
    recipe = copy / SHRINKD
    recipe.write_text(re.sub(r"md5=[0-9a-f]{32}", "md5=" + "0" * 32, recipe.read_text()))
    before = (copy / SOURCE_INC).read_text()
    result = srcrev_script("HEAD", "--layer", str(copy))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "the licence in COPYING changed" in result.stderr
    assert (copy / SOURCE_INC).read_text() == before


TINFOIL = r"""
import json, sys
sys.path.insert(0, sys.argv[1] + "/lib")
import bb.tinfoil
out = {}
config_only = sys.argv[2] == "config-only"
with bb.tinfoil.Tinfoil() as tinfoil:
    tinfoil.prepare(config_only=config_only, quiet=2)
    for pn, path in (("shrinkd", sys.argv[3]), ("shrinkmem", sys.argv[4])):
        d = tinfoil.parse_recipe_file(path) if config_only else tinfoil.parse_recipe(pn)
        out[pn] = {name: d.getVar(name) or "" for name in (
            "PV", "S", "RDEPENDS:" + pn, "SYSTEMD_SERVICE:" + pn, "CONFFILES:" + pn, "KERNEL_MODULE_AUTOLOAD",
            "DEPENDS", "FILESPATH", "SRC_URI", "SRCREV", "BP", "EXTERNALSRC")}
        out[pn]["unpackroot"] = d.getVar("UNPACKDIR") or d.getVar("WORKDIR")
        out[pn]["inherits"] = [c.rsplit("/", 1)[-1] for c in d.getVar("__inherit_cache") or []]
print()  # BitBake's notes may go to stdout before: the values are the last line
print(json.dumps(out))
"""


def oe_checkouts() -> Optional[Dict[str, Path]]:
    core, bitbake = os.environ.get("SHRINKD_OECORE"), os.environ.get("SHRINKD_BITBAKE")
    if not core or not bitbake:
        return None
    return {"core": Path(core).resolve(), "bitbake": Path(bitbake).resolve()}


def oe_build(checkouts: Dict[str, Path], local: str = "") -> Tuple[Path, Dict[str, str]]:
    """A build folder with openembedded-core's meta and the layer, and the environment to run BitBake in it."""
    build = new_run_dir("oe-build-")
    (build / "conf").mkdir()
    (build / "conf" / "bblayers.conf").write_text(
        f'BBPATH = "${{TOPDIR}}"\nBBFILES ?= ""\nBBLAYERS = "{checkouts["core"] / "meta"} {LAYER}"\n')
    # Parse only: BitBake's sanity class refuses root and wants every build host tool.
    (build / "conf" / "local.conf").write_text(
        'MACHINE = "qemux86-64"\nINIT_MANAGER = "systemd"\nINHERIT:remove = "sanity uninative"\n'
        'HOSTTOOLS:remove = "chrpath gawk"\n' + local)
    # BitBake insists on the en_US.UTF-8 locale: compiled here, so the machine's are left alone
    locales = build / "locale"
    locales.mkdir()
    made = subprocess.run(["localedef", "-i", "en_US", "-f", "UTF-8", str(locales / "en_US.UTF-8")], check=False,
                          capture_output=True, text=True)
    assert (locales / "en_US.UTF-8").is_dir(), made.stdout + made.stderr
    env = {"PATH": f"{checkouts['bitbake'] / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "en_US.UTF-8", "LOCPATH": str(locales), "BB_ENV_PASSTHROUGH_ADDITIONS": "LOCPATH",
           "BBPATH": str(build)}
    return build, env


def tinfoil_values(checkouts: Dict[str, Path], build: Path, env: Dict[str, str], mode: str) -> Dict[str, Any]:
    values = subprocess.run(["/usr/bin/python3", "-c", TINFOIL, str(checkouts["bitbake"]), mode, str(LAYER / SHRINKD),
                             str(LAYER / SHRINKMEM)], cwd=build, env=env, capture_output=True, text=True, check=False)
    assert values.returncode == 0, values.stderr[-3000:]
    found: Dict[str, Any] = json.loads(values.stdout.splitlines()[-1])
    return found


NEEDS_OECORE = pytest.mark.skipif(
    oe_checkouts() is None,
    reason="openembedded-core is on neither PyPI nor Debian: set SHRINKD_OECORE and SHRINKD_BITBAKE to checkouts of "
           "the layer's series to parse against it")


@NEEDS_OECORE
def test_bitbake_parses_openembedded_core_with_the_layer(parsed: Dict[str, Any]) -> None:
    checkouts = oe_checkouts()
    assert checkouts
    build, env = oe_build(checkouts)
    parse = subprocess.run(["bitbake", "-p"], cwd=build, env=env, capture_output=True, text=True, check=False)
    assert parse.returncode == 0, parse.stdout[-3000:] + parse.stderr[-3000:]
    assert re.search(r"Parsing of \d+ \.bb files complete .* 0 errors", parse.stdout), parse.stdout[-2000:]
    found = tinfoil_values(checkouts, build, env, "full")
    assert found["shrinkd"]["PV"] == python_version() and found["shrinkmem"]["PV"] == module_version()
    assert "python_setuptools_build_meta.bbclass" in found["shrinkd"]["inherits"]
    assert "systemd.bbclass" in found["shrinkd"]["inherits"]
    assert found["shrinkd"]["SYSTEMD_SERVICE:shrinkd"] == "shrinkd.service"
    assert set(found["shrinkd"]["RDEPENDS:shrinkd"].split()) >= {OE_PYTHON_PACKAGES[m] for m in imported_modules()
                                                                  if m not in OPTIONAL}
    # the git tree in UNPACKDIR/${BP} or (scarthgap) WORKDIR/${BP}: bitbake.conf's S for the daemon, its kmod
    # folder for the module
    for pn in ("shrinkd", "shrinkmem"):
        values = found[pn]
        assert values["SRC_URI"] == parsed["recipes"][SHRINKD if pn == "shrinkd" else SHRINKMEM]["SRC_URI"]
        assert values["SRCREV"] == parsed["recipes"][SHRINKD]["SRCREV"]
        assert f";destsuffix={values['BP']}" in values["SRC_URI"]
    assert found["shrinkd"]["S"] == f"{found['shrinkd']['unpackroot']}/{found['shrinkd']['BP']}"
    assert found["shrinkmem"]["S"] == f"{found['shrinkmem']['unpackroot']}/{found['shrinkmem']['BP']}/kmod"
    assert "module.bbclass" in found["shrinkmem"]["inherits"]
    assert "shrinkmem" not in found["shrinkmem"]["KERNEL_MODULE_AUTOLOAD"].split()


@NEEDS_OECORE
def test_externalsrc_builds_a_working_tree() -> None:
    """The layer README's way to build a working tree: openembedded-core's externalsrc makes it S and drops the
    git fetch."""
    checkouts = oe_checkouts()
    assert checkouts
    build, env = oe_build(checkouts, f'INHERIT += "externalsrc"\nEXTERNALSRC:pn-shrinkd = "{REPO}"\n'
                                     f'EXTERNALSRC:pn-shrinkmem = "{REPO / "kmod"}"\n')
    found = tinfoil_values(checkouts, build, env, "config-only")
    assert found["shrinkd"]["S"] == str(REPO) and found["shrinkmem"]["S"] == str(REPO / "kmod")
    assert "git://" not in found["shrinkd"]["SRC_URI"] + found["shrinkmem"]["SRC_URI"]
    assert "externalsrc.bbclass" in found["shrinkd"]["inherits"]
