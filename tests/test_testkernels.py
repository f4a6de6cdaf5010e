"""tests/testkernels.py without building a kernel: what each test kernel asks for, and the cache keys.

The kernels themselves are built and booted by tests/test_kmod_vm.py and tests/test_nohib_board_vm.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import testkernels

needs_inputs = pytest.mark.skipif(testkernels.available() is not None, reason=str(testkernels.available()))


KCFI = ("kcfi-debug-export", "kcfi-debug", "kcfi-debug-nohib")
# What the x86_64 board image (tests/rootfs.py) needs built into a kernel booted without an initramfs.
BOARD_BUILT_IN = (
    "CONFIG_VIRTIO_PCI",
    "CONFIG_VIRTIO_BLK",
    "CONFIG_EXT4_FS",
    "CONFIG_DEVTMPFS",
    "CONFIG_DEVTMPFS_MOUNT",
    "CONFIG_CGROUPS",
    "CONFIG_MEMCG",
    "CONFIG_UNIX",
    "CONFIG_INOTIFY_USER",
    "CONFIG_SIGNALFD",
    "CONFIG_TIMERFD",
    "CONFIG_EPOLL",
    "CONFIG_FHANDLE",
    "CONFIG_TMPFS",
    "CONFIG_AUTOFS_FS",
    "CONFIG_NET_9P",
    "CONFIG_NET_9P_VIRTIO",
    "CONFIG_9P_FS",
    "CONFIG_SERIAL_8250_CONSOLE",
    "CONFIG_PSI",
    "CONFIG_IKCONFIG_PROC",
)


def diff(a: dict[str, str], b: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {key: (a.get(key, "n"), b.get(key, "n")) for key in set(a) | set(b) if a.get(key, "n") != b.get(key, "n")}


def test_each_kernel_asks_for_what_its_test_needs() -> None:
    wanted = {name: spec.wanted() for name, spec in testkernels.SPECS.items()}
    for name, options in wanted.items():
        # What the module and its guest checks use, on every test kernel.
        for option in (
            "CONFIG_MODULES",
            "CONFIG_MODULE_UNLOAD",
            "CONFIG_KPROBES",
            "CONFIG_KPROBE_EVENTS",
            "CONFIG_SWAP",
        ):
            assert options[option] == "y", (name, option)
        assert options["CONFIG_SUSPEND"] == options["CONFIG_PM_DEBUG"] == "y", name  # the freezer's pm_test
        assert options["CONFIG_DEBUG_INFO"] == "n", name  # debug info would double the build
    assert wanted["kcfi-debug-nohib"]["CONFIG_HIBERNATION"] == wanted["board-nohib"]["CONFIG_HIBERNATION"] == "n"
    for name in ("kcfi-debug-export", "kcfi-debug"):
        assert wanted[name]["CONFIG_HIBERNATION"] == "y"
    for name in KCFI:
        options = wanted[name]
        assert options["CONFIG_CFI_CLANG"] == "y" and testkernels.SPECS[name].compiler == "clang", name
        assert options["CONFIG_PROVE_LOCKING"] == options["CONFIG_KASAN"] == "y", name
    assert [name for name, spec in testkernels.SPECS.items() if spec.export_patch] == [
        "kcfi-debug-export",
        "kcfi-debug-nohib",
    ]


def test_the_board_kernel_boots_a_debian_root_with_systemd_and_has_no_hibernation() -> None:
    """board-nohib (tests/test_nohib_board_vm.py): no initramfs, so what finds the root and the host's
    shares is built in, with what systemd 252 needs; no debug options that would slow it under emulation."""
    spec = testkernels.SPECS["board-nohib"]
    options = spec.wanted()
    assert options["CONFIG_HIBERNATION"] == "n" and options["CONFIG_MODULES"] == "y"
    for option in BOARD_BUILT_IN:
        assert options.get(option) == "y", option
    for option in ("CONFIG_KASAN", "CONFIG_PROVE_LOCKING"):
        assert options[option] == "n", option
    assert "CONFIG_CFI_CLANG" not in options and not spec.export_patch
    assert spec.compiler == "gcc" and spec.make_vars == ["ARCH=x86_64"]


def test_kernels_sharing_a_tree_differ_by_one_thing() -> None:
    """What makes the second and third kernels cheap: the one-line patch, or one option."""
    specs = testkernels.SPECS
    assert diff(specs["kcfi-debug-export"].wanted(), specs["kcfi-debug"].wanted()) == {}
    assert (specs["kcfi-debug-export"].export_patch, specs["kcfi-debug"].export_patch) == (True, False)
    nohib = diff(specs["kcfi-debug-export"].wanted(), specs["kcfi-debug-nohib"].wanted())
    assert nohib == {"CONFIG_HIBERNATION": ("y", "n")}
    assert specs["kcfi-debug-nohib"].export_patch
    # One compiler, so one tree: the first kernel listed is the full build.
    assert {specs[name].compiler for name in KCFI} == {"clang"}
    # The board kernel differs in many options: built with gcc, in a tree of its own, it leaves the
    # clang tree's objects as the kCFI kernels left them (and theirs leave its own). The series kernel
    # is built with gcc too, in a third tree, where the series stays applied.
    assert [name for name, spec in specs.items() if spec.compiler == "gcc"] == ["board-nohib", "upstream-6.1"]
    assert [name for name, spec in specs.items() if spec.series] == ["upstream-6.1"]


def test_the_series_kernel_builds_the_in_tree_driver_as_a_module() -> None:
    """upstream-6.1: the series instead of the export patch, the driver as a module that the cache keeps
    for the guest to load, and nothing of the debug kernels (the suite's guest runs at Debian's pace)."""
    spec = testkernels.SPECS["upstream-6.1"]
    options = spec.wanted()
    assert options["CONFIG_HIBERNATION"] == "y" and options["CONFIG_SHRINKMEM"] == "m"
    assert options["CONFIG_MODULES"] == options["CONFIG_MODULE_UNLOAD"] == "y"
    for option in ("CONFIG_KASAN", "CONFIG_PROVE_LOCKING", "CONFIG_CFI_CLANG"):
        assert option not in options, option
    assert spec.series and not spec.export_patch and spec.compiler == "gcc"
    kernel = testkernels.TestKernel(spec, Path("/cache/upstream-6.1-key"))
    assert kernel.kept_module("shrinkmem.ko") == Path("/cache/upstream-6.1-key/modules/shrinkmem.ko")
    with pytest.raises(KeyError, match=r"keeps no module 'other\.ko'"):
        kernel.kept_module("other.ko")
    # The series' patches in the order they apply, without the cover letter.
    names = [path.name for path in testkernels.series_patches()]
    assert names == sorted(names) and names[0].startswith("0001-") and len(names) == 5
    assert not any(name.startswith("0000") for name in names)


def test_a_kernels_module_index_is_kept_beside_its_image(tmp_path: Path) -> None:
    """What a guest's /lib/modules/<release>/ needs so that modprobe finds built-in modules."""
    kernel = testkernels.TestKernel(testkernels.SPECS["board-nohib"], tmp_path)
    assert [path.relative_to(tmp_path).as_posix() for path in kernel.module_index] == [
        "modules/modules.builtin",
        "modules/modules.builtin.modinfo",
        "modules/modules.order",
    ]


def test_config_parsing_reads_set_and_unset_options() -> None:
    text = 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n# comment\nCONFIG_D=0x10\n'
    assert testkernels.parse_config(text) == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"x y"', "CONFIG_D": "0x10"}
    assert testkernels.parse_fragment("CONFIG_A=n\n# CONFIG_B is not set\n") == {"CONFIG_A": "n", "CONFIG_B": "n"}


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHRINKD_TEST_CACHE", str(tmp_path))
    assert testkernels.cache_root() == tmp_path / "kernels"
    monkeypatch.delenv("SHRINKD_TEST_CACHE")
    assert testkernels.cache_root() == Path("/var/cache/shrinkd-tests/kernels")


@needs_inputs
def test_keys_are_stable_and_tell_the_kernels_apart() -> None:
    keys = {name: testkernels.spec_key(spec) for name, spec in testkernels.SPECS.items()}
    assert len(set(keys.values())) == len(keys)
    assert keys == {name: testkernels.spec_key(spec) for name, spec in testkernels.SPECS.items()}
    # Every input changes the key: here the patch (the clang pair differs by nothing else).
    assert all(len(key) == 16 for key in keys.values())


@needs_inputs
def test_the_series_kernels_key_follows_each_patch_but_not_the_cover_letter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Any byte of a patch of the series makes a new kernel; the cover letter's text (its figures) does not."""
    series = tmp_path / "upstream"
    shutil.copytree(testkernels.SERIES_DIR, series)
    monkeypatch.setattr(testkernels, "SERIES_DIR", series)
    spec = testkernels.SPECS["upstream-6.1"]
    key = testkernels.spec_key(spec)
    cover = series / "0000-cover-letter.patch"
    cover.write_text(cover.read_text() + "more figures\n")
    assert testkernels.spec_key(spec) == key
    driver = next(series.glob("0003-*.patch"))
    driver.write_text(driver.read_text().replace("default 16", "default 8", 1))
    assert testkernels.spec_key(spec) != key
    # Nor do the kernels without the series see it.
    others = {name: testkernels.spec_key(other) for name, other in testkernels.SPECS.items() if not other.series}
    monkeypatch.setattr(testkernels, "SERIES_DIR", testkernels.REPO / "kmod" / "patches" / "upstream")
    assert others == {name: testkernels.spec_key(other) for name, other in testkernels.SPECS.items() if not other.series}


def _one_file_patch(old: str, new: str) -> str:
    return f"--- a/f.txt\n+++ b/f.txt\n@@ -1 +1 @@\n-{old}\n+{new}\n"


@pytest.mark.skipif(shutil.which("patch") is None, reason="patch(1) is not installed: run scripts/setup.sh")
def test_the_series_tree_follows_a_changed_patch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The series tree is patched once; a changed patch is reverted as it was applied, then applied anew;
    a patch that does not apply leaves the tree as it was and says which."""
    series, tree = tmp_path / "series", tmp_path / "tree"
    series.mkdir()
    tree.mkdir()
    monkeypatch.setattr(testkernels, "SERIES_DIR", series)
    (tree / "f.txt").write_text("a\n")
    (series / "0000-cover-letter.patch").write_text("not a patch\n")
    (series / "0001-first.patch").write_text(_one_file_patch("a", "b"))
    (series / "0002-second.patch").write_text(_one_file_patch("b", "c"))
    log = tmp_path / "log"
    testkernels._set_series(tree, log)
    assert (tree / "f.txt").read_text() == "c\n"
    testkernels._set_series(tree, log)  # unchanged: nothing to do (applying again would fail)
    assert (tree / "f.txt").read_text() == "c\n"
    (series / "0002-second.patch").write_text(_one_file_patch("b", "d"))
    testkernels._set_series(tree, log)
    assert (tree / "f.txt").read_text() == "d\n"
    assert sorted(p.name for p in (tree / testkernels._APPLIED).iterdir()) == ["0001-first.patch", "0002-second.patch"]
    (series / "0002-second.patch").write_text(_one_file_patch("x", "y"))
    with pytest.raises(testkernels.KernelBuildError, match="failed in"):
        testkernels._set_series(tree, log)
    assert (tree / "f.txt").read_text() == "b\n"  # the first patch only, no hunk of the bad one
    assert sorted(p.name for p in tree.iterdir() if p.name != testkernels._APPLIED) == ["f.txt"]  # no .rej, no .orig


@needs_inputs
def test_virtme_options_are_the_required_lists_only() -> None:
    """virtme-ng's options come without its optional extras (graphics, sound, BPF), which a test kernel does not need."""
    options = testkernels.virtme_options()
    assert options.startswith("##: Arch-specific options")
    assert "CONFIG_VIRTIO_PCI=y" in options and "CONFIG_9P_FS=y" in options
    assert "CONFIG_DRM_VIRTIO_GPU" not in options and "CONFIG_SND" not in options
