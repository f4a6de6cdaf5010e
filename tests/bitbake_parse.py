"""Parse meta-shrinkd with BitBake's own parser; print what the recipes resolve to, as JSON.

    python tests/bitbake_parse.py LAYER CLASSES [OVERRIDE | VARIABLE=VALUE ...]

Run in a process of its own (BitBake's `bb` installs its own logging classes). LAYER is
the layer's folder; CLASSES a folder on BBPATH with the classes the recipes inherit
(openembedded-core's, or empty stand-ins where openembedded-core cannot be had); the
OVERRIDEs are added to OVERRIDES (e.g. shrinkmem-export); VARIABLE=VALUE sets a variable
before the layer is read (e.g. DISTRO_FEATURES=sysvinit), and UNPACKDIR= (empty) leaves
UNPACKDIR unset, as scarthgap's bitbake.conf does. For each recipe the output
holds the values of VARIABLES, where each file:// entry of SRC_URI was found on
FILESPATH (null when it was not), each git:// entry's URL and parameters, and the folder
the fetcher unpacks into (UNPACKDIR, or WORKDIR without it); for each bbappend, parsed as
an include over an empty recipe, the same.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import types
from typing import Any, Dict, List, Optional

# The `bb` of PyPI's bitbake-setup wheel leaves out BitBake's hash equivalence server
# (hashserv), which bb.siggen imports but a parse never calls.
for _name in ("hashserv", "hashserv.client"):
    sys.modules.setdefault(_name, types.ModuleType(_name))

import bb  # type: ignore[import-untyped]  # noqa: E402
import bb.data  # type: ignore[import-untyped]  # noqa: E402
import bb.fetch2  # type: ignore[import-untyped]  # noqa: E402
import bb.parse  # type: ignore[import-untyped]  # noqa: E402
import bb.parse.parse_py.BBHandler  # type: ignore[import-untyped]  # noqa: E402
import bb.siggen  # type: ignore[import-untyped]  # noqa: E402

VARIABLES = (
    "PN", "PV", "S", "SRC_URI", "LICENSE", "LIC_FILES_CHKSUM", "RDEPENDS:${PN}", "RRECOMMENDS:${PN}",
    "SYSTEMD_SERVICE:${PN}", "CONFFILES:${PN}", "FILES:${PN}", "KERNEL_MODULE_AUTOLOAD", "__inherit_cache",
    "do_install", "INITSCRIPT_NAME", "INITSCRIPT_PARAMS", "COMPATIBLE_HOST", "SRCREV", "HOMEPAGE", "BP",
)


def base(layer: str, classes: str, overrides: List[str], settings: Dict[str, str]) -> Any:
    d = bb.data.init()
    d.setVar("BBPATH", f"{classes}:{layer}")
    d.setVar("TOPDIR", os.getcwd())
    d.setVar("OVERRIDES", ":".join(["shrinkd-parse", *overrides]))
    d.setVar("UNPACKDIR", "${WORKDIR}/sources")
    for name, value in settings.items():
        if value:
            d.setVar(name, value)
        else:
            d.delVar(name)
    d.setVar("WORKDIR", "/work")
    # bitbake.conf's S: below UNPACKDIR from styhead on, below WORKDIR in scarthgap
    d.setVar("S", "${UNPACKDIR}/${BP}" if d.getVar("UNPACKDIR", False) is not None else "${WORKDIR}/${BP}")
    # The few definitions of openembedded-core's bitbake.conf the recipes rely on.
    d.setVar("PN", "${@bb.parse.vars_from_file(d.getVar('FILE', False), d)[0] or 'defaultpkgname'}")
    d.setVar("PV", "${@bb.parse.vars_from_file(d.getVar('FILE', False), d)[1] or '1.0'}")
    d.setVar("BPN", "${PN}")
    d.setVar("BP", "${BPN}-${PV}")
    d.setVar("FILE_DIRNAME", "${@os.path.dirname(d.getVar('FILE', False))}")
    d.setVar("THISDIR", "${@os.path.dirname(d.getVar('FILE'))}")
    d.setVar("FILESPATH", "${FILE_DIRNAME}/${PN}:${FILE_DIRNAME}/files")
    d.setVar("FILESOVERRIDES", "")
    d.setVar("LAYERDIR", layer)
    bb.parse.handle(os.path.join(layer, "conf", "layer.conf"), d, True)
    d.expandVarref("LAYERDIR")  # as the cooker does after each layer.conf
    d.delVar("LAYERDIR")
    bb.parse.siggen = bb.siggen.init(d)
    d.setVar("__bbclasstype", "recipe")
    return d


def files(d: Any) -> Dict[str, Optional[str]]:
    """Each file:// entry of SRC_URI and the file it resolves to on FILESPATH (FILESEXTRAPATHS first)."""
    extra = [path for path in (d.getVar("FILESEXTRAPATHS") or "").split(":") if path and path != "__default"]
    search = extra + (d.getVar("FILESPATH") or "").split(":")
    found: Dict[str, Optional[str]] = {}
    for uri in (d.getVar("SRC_URI") or "").split():
        kind, _, path, _, _, _ = bb.fetch2.decodeurl(uri)
        if kind != "file":
            continue
        hits = [os.path.normpath(os.path.join(root, path)) for root in search if root]
        found[path] = next((hit for hit in hits if os.path.exists(hit)), None)
    return found


def git(d: Any) -> List[Dict[str, str]]:
    """Each git:// entry of SRC_URI: its URL (host and path) and its parameters."""
    found = []
    for uri in (d.getVar("SRC_URI") or "").split():
        kind, host, path, _, _, params = bb.fetch2.decodeurl(uri)
        if kind == "git":
            found.append({"url": f"{host}{path}", **params})
    return found


def describe(d: Any) -> Dict[str, Any]:
    values = {name: d.expand(d.getVar(name.replace("${PN}", d.getVar("PN") or "")) or "")
              if name != "__inherit_cache" else d.getVar(name) or [] for name in VARIABLES}
    values["files"] = files(d)
    values["git"] = git(d)
    values["unpackroot"] = d.getVar("UNPACKDIR") or d.getVar("WORKDIR")
    values["FILESEXTRAPATHS"] = d.getVar("FILESEXTRAPATHS") or ""
    return values


def main(argv: List[str]) -> int:
    layer, classes = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    overrides = [arg for arg in argv[3:] if "=" not in arg]
    settings = dict(arg.split("=", 1) for arg in argv[3:] if "=" in arg)
    result: Dict[str, Any] = {"bitbake": bb.__version__, "recipes": {}, "appends": {}}
    d = base(layer, classes, overrides, settings)
    result["layer"] = {name: d.getVar(name) or "" for name in (
        "BBFILE_COLLECTIONS", "BBFILE_PATTERN_shrinkd", "BBFILE_PRIORITY_shrinkd", "LAYERVERSION_shrinkd",
        "LAYERSERIES_COMPAT_shrinkd", "LAYERDEPENDS_shrinkd", "BBFILES", "BBPATH")}
    recipes = sorted(path for pattern in (d.getVar("BBFILES") or "").split() for path in glob.glob(pattern))
    for path in recipes:
        name = os.path.relpath(path, layer)
        if path.endswith(".bb"):
            parsed = bb.parse.handle(path, bb.data.createCopy(d))
            result["recipes"][name] = describe(parsed[""])
        else:
            rd = bb.data.createCopy(d)
            rd.setVar("FILE", path)
            bb.parse.BBHandler.handle(path, rd, True)  # as multi_finalize applies each bbappend
            result["appends"][name] = describe(rd)
    json.dump(result, sys.stdout, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
