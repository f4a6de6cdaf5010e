"""Backends against fake /proc and /sys trees: what is detected, what is written where, fallbacks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import pytest

from shrinkd.actions import Backends, Tunables
from shrinkd.actions.compact import Compact
from shrinkd.errors import ActionError, MissingInputError
from shrinkd.procfs import Partial, ProcFS

from .configs import current


def fake_tree(
    root: Path,
    *,
    node_files: Iterable[Tuple[int, str]] = ((0, "compact"),),
    compact_memory: bool = True,
    drop_caches: bool = True,
    cgroup: Optional[str] = "fs/cgroup",
) -> ProcFS:
    """An empty-ish kernel: the control files shrinkd writes, each holding "" until written."""
    proc, sys = root / "proc", root / "sys"
    (proc / "sys" / "vm").mkdir(parents=True)
    if compact_memory:
        (proc / "sys" / "vm" / "compact_memory").write_text("")
    if drop_caches:
        (proc / "sys" / "vm" / "drop_caches").write_text("")
    for node, name in node_files:
        directory = sys / "devices" / "system" / "node" / f"node{node}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text("")
    if cgroup is not None:
        (sys / cgroup).mkdir(parents=True)
        (sys / cgroup / "memory.reclaim").write_text("")
    return ProcFS(proc, sys)


def written(procfs: ProcFS) -> List[Tuple[str, str]]:
    """Every control file that holds something, relative to the tree, with what it holds."""
    root = Path(procfs.proc_root).parent
    return sorted(
        (str(path.relative_to(root)), path.read_text())
        for path in root.rglob("*")
        if path.is_file() and path.read_text() and path.name != "shrinkmem"
    )


def test_compaction_per_node_where_the_node_file_exists(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path, node_files=[(0, "compact"), (1, "compact")])
    compactor = Compact(procfs, Tunables())
    assert compactor.run(1).backend == "node1/compact"
    assert written(procfs) == [("sys/devices/system/node/node1/compact", "1")]
    assert compactor.run(None).backend == "compact_memory"
    assert ("proc/sys/vm/compact_memory", "1") in written(procfs)


def test_compaction_without_node_files_uses_compact_memory(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path, node_files=[])
    assert Compact(procfs, Tunables()).run(0).backend == "compact_memory"
    assert written(procfs) == [("proc/sys/vm/compact_memory", "1")]


def test_compaction_with_node_files_only(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path, node_files=[(0, "compact"), (1, "compact")], compact_memory=False)
    assert Compact(procfs, Tunables()).run(None).backend == "node*/compact"
    assert written(procfs) == [
        ("sys/devices/system/node/node0/compact", "1"),
        ("sys/devices/system/node/node1/compact", "1"),
    ]


def test_detection_follows_the_configuration(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path, node_files=[(0, "compact"), (0, "reclaim")])
    backends = Backends(procfs, current())
    # shrinkmem: no device; drop_caches: present but disabled by default.
    assert backends.names() == ["compact", "node_reclaim", "memory_reclaim"]
    assert backends.kinds() == frozenset({"compact", "reclaim"})
    text = "backends:\n  node_reclaim: {enabled: false}\n  drop_caches: {enabled: true}\nreclaim:\n  prefer: [drop_caches, memory_reclaim]\n"
    assert Backends(procfs, current(text)).names() == ["compact", "drop_caches", "memory_reclaim"]
    assert (
        Backends(fake_tree(tmp_path / "bare", node_files=[], compact_memory=False, cgroup=None), current()).kinds()
        == frozenset()
    )


def test_memory_reclaim_on_the_hybrid_layout(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path, cgroup="fs/cgroup/unified")
    result = Backends(procfs, current()).reclaim(8 << 20, 0)
    assert result.backend == "memory_reclaim" and result.requested == 8 << 20 and result.pages_reclaimed is None
    # No /proc/vmstat here: each 1 MiB part (8 MiB / 8) counts as twice what it asked for (the assumed
    # overshoot), so four parts make 8 MiB.
    assert result.requests == 4
    assert ("sys/fs/cgroup/unified/memory.reclaim", str(1 << 20)) in written(procfs)


def test_node_reclaim_aims_at_the_zone_node(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path, node_files=[(0, "reclaim"), (1, "reclaim")], cgroup=None)
    result = Backends(procfs, current()).reclaim(1 << 20, 1)
    assert result.backend == "node1/reclaim"
    # In parts of 128 KiB (1 MiB / 8), each counted as 256 KiB without /proc/vmstat: four of them.
    assert [w for w in written(procfs) if "reclaim" in w[0]] == [("sys/devices/system/node/node1/reclaim", "131072")]
    assert result.requests == 4


def test_a_failing_backend_falls_through_to_the_next(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path, node_files=[(0, "reclaim")])
    device = tmp_path / "shrinkmem"
    device.write_text("")  # a regular file where the device should be: the ioctl fails (ENOTTY)
    config = f"backends:\n  shrinkmem: {{device: {device}}}\nreclaim:\n  prefer: [shrinkmem, node_reclaim, memory_reclaim]\n"
    backends = Backends(procfs, current(config))
    assert backends.names() == ["compact", "shrinkmem", "node_reclaim", "memory_reclaim"]
    # Node 1 has no reclaim file: node_reclaim cannot aim there, memory_reclaim can (system-wide).
    result = backends.reclaim(4 << 20, 1)
    assert result.backend == "memory_reclaim"
    assert len(result.failures) == 2
    # Opening the device asks the module its ABI version first (SHRINKMEM_IOC_INFO): that is what fails here.
    assert result.failures[0].startswith(
        f"shrinkmem: {device}: cannot ask the shrinkmem module its ABI version (SHRINKMEM_IOC_INFO: ENOTTY"
    )
    assert result.failures[1] == "node_reclaim: not available for node 1"


def test_every_backend_failing_is_an_action_error(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path, cgroup="fs/cgroup")
    backends = Backends(procfs, current())
    (Path(procfs.sys("fs/cgroup")) / "memory.reclaim").unlink()  # gone after detection
    with pytest.raises(ActionError) as caught:
        backends.reclaim(4 << 20, 0)
    assert (
        str(caught.value) == f"memory_reclaim: {procfs.sys('fs/cgroup/memory.reclaim')}: does not exist"
    )


def test_naming_an_unavailable_backend(tmp_path: Path) -> None:
    backends = Backends(fake_tree(tmp_path), current())
    with pytest.raises(ActionError) as caught:
        backends.reclaim(4 << 20, 0, "node_reclaim")
    assert str(caught.value) == "reclaim backend node_reclaim is not available (available: memory_reclaim)"


def test_drop_caches_writes_its_mode(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path, cgroup=None)
    text = "backends:\n  drop_caches: {enabled: true, what: both}\nreclaim:\n  prefer: [drop_caches]\n"
    result = Backends(procfs, current(text)).reclaim(4 << 20, None)
    assert result.backend == "drop_caches"
    assert ("proc/sys/vm/drop_caches", "3") in written(procfs)


class EagainTunables(Tunables):
    """Answers like memory.reclaim does when the kernel could not reclaim all it was asked: EAGAIN."""

    def write(self, path: str, value: str) -> None:
        super().write(path, value)
        raise Partial(path)


def test_partial_reclaim_is_reported_not_failed(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path)
    result = Backends(procfs, current(), EagainTunables()).reclaim(4 << 20, 0)
    assert (result.backend, result.partial) == ("memory_reclaim", True)


def test_tunables_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError) as missing:
        Tunables().write(str(tmp_path / "absent"), "1")
    assert str(missing.value) == f"{tmp_path / 'absent'}: does not exist"
    with pytest.raises(ActionError) as refused:
        Tunables().write(str(tmp_path), "1")
    assert str(refused.value) == f"{tmp_path}: cannot open for writing: Is a directory"


class Watching(Tunables):
    """Records vfs_cache_pressure's value (and the value saved for a restart) at each write to
    memory.reclaim; can fail that write."""

    def __init__(self, pressure: Path, fail_reclaim: bool = False, saved: Optional[Path] = None) -> None:
        self.pressure = pressure
        self.fail_reclaim = fail_reclaim
        self.saved = saved
        self.seen: List[str] = []
        self.kept: List[str] = []

    def write(self, path: str, value: str) -> None:
        if path.endswith("memory.reclaim"):
            self.seen.append(self.pressure.read_text().strip())
            if self.saved is not None:
                self.kept.append(self.saved.read_text().strip() if self.saved.exists() else "")
            if self.fail_reclaim:
                raise ActionError(f"{path}: writing {value!r} failed: Device or resource busy")
        super().write(path, value)


def pressure_tree(root: Path, value: str = "100\n") -> Tuple[ProcFS, Path]:
    procfs = fake_tree(root)
    pressure = Path(procfs.proc("sys/vm/vfs_cache_pressure"))
    pressure.write_text(value)
    return procfs, pressure


def test_a_reclaim_after_compaction_raises_vfs_cache_pressure_and_puts_it_back(tmp_path: Path) -> None:
    procfs, pressure = pressure_tree(tmp_path)
    keep = tmp_path / "run"
    keep.mkdir()
    tunables = Watching(pressure, saved=keep / "vfs_cache_pressure.saved")
    backends = Backends(procfs, current(), tunables, keep_dir=str(keep))
    result = backends.reclaim(8 << 20, 0, cache_pressure=10000)
    # Raised once for the whole reclaim: every part (four here, unmeasured) runs at 10000.
    assert result.requests == 4 and tunables.seen == ["10000"] * 4 and pressure.read_text() == "100\n"
    assert tunables.kept == ["100"] * 4  # while raised, the value before is kept for a restart
    assert result.cache_pressure == 10000 and result.failures == ()
    assert list(keep.iterdir()) == []  # the saved value is gone once put back
    # Without it (a watermark's reclaim, or vfs_cache_pressure: null) nothing changes.
    assert backends.reclaim(8 << 20, 0).cache_pressure is None and tunables.seen[-1] == "100"
    # Already at least as high: left alone, and not claimed.
    pressure.write_text("20000\n")
    assert backends.reclaim(8 << 20, 0, cache_pressure=10000).cache_pressure is None
    assert tunables.seen[-1] == "20000" and pressure.read_text() == "20000\n"


def test_vfs_cache_pressure_is_put_back_when_the_reclaim_fails(tmp_path: Path) -> None:
    procfs, pressure = pressure_tree(tmp_path, "150\n")
    tunables = Watching(pressure, fail_reclaim=True)
    with pytest.raises(ActionError):
        Backends(procfs, current(), tunables, keep_dir=str(tmp_path)).reclaim(8 << 20, 0, cache_pressure=500)
    assert tunables.seen == ["500"] and pressure.read_text() == "150\n"
    assert not (tmp_path / "vfs_cache_pressure.saved").exists()


def test_a_reclaim_without_vfs_cache_pressure_still_runs_and_says_why(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path)  # no vfs_cache_pressure file
    result = Backends(procfs, current()).reclaim(8 << 20, 0, cache_pressure=10000)
    assert result.backend == "memory_reclaim" and result.cache_pressure is None
    assert result.failures == (
        f"vfs_cache_pressure not raised: {procfs.proc('sys/vm/vfs_cache_pressure')}: cannot read: No such file or directory",
    )


def test_a_value_left_by_a_killed_daemon_is_put_back_at_start(tmp_path: Path) -> None:
    procfs, pressure = pressure_tree(tmp_path, "10000\n")
    keep = tmp_path / "run"
    keep.mkdir()
    (keep / "vfs_cache_pressure.saved").write_text("100\n")
    backends = Backends(procfs, current(), keep_dir=str(keep))
    assert backends.restore_cache_pressure() == 100
    assert pressure.read_text() == "100\n" and list(keep.iterdir()) == []
    assert backends.restore_cache_pressure() is None  # nothing left: nothing done
    (keep / "vfs_cache_pressure.saved").write_text("garbage")
    with pytest.raises(ActionError) as caught:
        backends.restore_cache_pressure()
    assert str(caught.value) == f"{keep / 'vfs_cache_pressure.saved'}: not a number: 'garbage'; removed"
    assert pressure.read_text() == "100\n" and list(keep.iterdir()) == []


# -- a reclaim takes no more than its size, whatever the backend does ---------------------------


class Overshooting(Tunables):
    """A root cgroup whose memory.reclaim takes `factors[n]` times what write n asks for (the last factor
    repeats), counted in /proc/vmstat's pgsteal_file as the kernel counts it."""

    def __init__(self, vmstat: Path, factors: List[float]) -> None:
        self.vmstat = vmstat
        self.factors = factors
        self.asked: List[int] = []

    def write(self, path: str, value: str) -> None:
        super().write(path, value)
        if not path.endswith("memory.reclaim"):
            return
        factor = self.factors[min(len(self.asked), len(self.factors) - 1)]
        self.asked.append(int(value))
        taken = int(int(value) * factor) // 4096
        counters = dict(line.split() for line in self.vmstat.read_text().splitlines())
        counters["pgsteal_file"] = str(int(counters["pgsteal_file"]) + taken)
        self.vmstat.write_text("".join(f"{key} {number}\n" for key, number in counters.items()))


def overshooting_tree(root: Path, factors: List[float]) -> Tuple[ProcFS, Overshooting]:
    procfs = fake_tree(root)
    vmstat = Path(procfs.proc("vmstat"))
    vmstat.write_text("nr_free_pages 1000\npgsteal_anon 500\npgsteal_file 7000\n")
    return procfs, Overshooting(vmstat, factors)


def taken_bytes(procfs: ProcFS) -> int:
    counters = dict(line.split() for line in Path(procfs.proc("vmstat")).read_text().splitlines())
    return (int(counters["pgsteal_anon"]) + int(counters["pgsteal_file"]) - 7500) * 4096


MIB = 1 << 20


@pytest.mark.parametrize(
    ("factor", "asked_mib", "taken_mib"),
    [
        # Each part is at most 64/8 = 8 MiB and at most (64 - taken) / 2 (the assumed overshoot, 2,
        # until a part measures more); parts under 64/32 = 2 MiB are not asked for.
        # 1.91 (122 MiB for 64, measured in a Debian 6.1 guest): 8 -> 15.28, 8 -> 30.56, 8 -> 45.84,
        # 8 -> 61.12; (64 - 61.12) / 2 = 1.44 < 2: stop.
        (1.91, [8, 8, 8, 8], 61.12),
        # 2.19 (140 MiB for 64): 8 -> 17.52, worst now 2.19; (64 - 17.52) / 2.19 = 21.2: 8 -> 35.04;
        # 28.96 / 2.19 = 13.2: 8 -> 52.56; 11.44 / 2.19 = 5.22 MiB (1337 whole pages: each part takes whole pages, so the worst measured is 2.18994) -> 63.99; stop.
        (2.19, [8, 8, 8, 1337 * 4096 / MIB], 52.56 + 1337 * 4096 * 2.19 / MIB),
        # A backend that takes what it is asked: 8 x 6 = 48; 16 / 2 = 8 -> 56; 4 -> 60; 2 -> 62; 1 < 2: stop.
        (1.0, [8, 8, 8, 8, 8, 8, 8, 4, 2], 62.0),
    ],
    ids=["1.91x", "2.19x", "exact"],
)
def test_a_reclaim_that_overshoots_stays_within_its_size(
    tmp_path: Path, factor: float, asked_mib: List[float], taken_mib: float
) -> None:
    procfs, kernel = overshooting_tree(tmp_path, [factor])
    result = Backends(procfs, current(), kernel).reclaim(64 * MIB, None)
    assert [n / MIB for n in kernel.asked] == pytest.approx(asked_mib)
    assert taken_bytes(procfs) / MIB == pytest.approx(taken_mib, abs=0.02)  # each part taken in whole pages
    assert taken_bytes(procfs) <= 64 * MIB  # the per-event cap (64M by default) holds
    assert (result.pages_reclaimed, result.pages_source) == (taken_bytes(procfs) // 4096, "vmstat")
    assert result.requests == len(asked_mib) and result.requested == 64 * MIB


def test_an_overshoot_larger_than_any_before_exceeds_the_size_by_at_most_that_part_s_excess(tmp_path: Path) -> None:
    # Exact parts until the ninth, which takes 3 times what it asks: the bound in stepped.py's docstring,
    # (r - worst) x ask = (3 - 2) x 2 MiB, is what it exceeds by. Parts: 8 x 6 = 48, 8 -> 56, 4 -> 60,
    # then 2 MiB taken as 6: 66 MiB.
    procfs, kernel = overshooting_tree(tmp_path, [1.0] * 8 + [3.0])
    result = Backends(procfs, current(), kernel).reclaim(64 * MIB, None)
    assert [n / MIB for n in kernel.asked] == [8, 8, 8, 8, 8, 8, 8, 4, 2]
    assert taken_bytes(procfs) == 66 * MIB == 64 * MIB + (3 - 2) * kernel.asked[-1]
    assert result.pages_reclaimed == 66 * MIB // 4096


def test_a_reclaim_stops_at_the_kernel_s_eagain_and_at_a_part_that_took_nothing(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path)
    result = Backends(procfs, current(), EagainTunables()).reclaim(64 * MIB, None)
    assert (result.requests, result.partial) == (1, True)
    procfs, kernel = overshooting_tree(tmp_path / "idle", [0.0])
    result = Backends(procfs, current(), kernel).reclaim(64 * MIB, None)
    assert (result.requests, result.pages_reclaimed) == (1, 0)


class FailingSecond(Overshooting):
    def write(self, path: str, value: str) -> None:
        if path.endswith("memory.reclaim") and self.asked:
            raise ActionError(f"{path}: writing {value!r} failed: Device or resource busy")
        super().write(path, value)


def test_a_part_that_fails_after_the_first_ends_the_reclaim_with_what_it_took(tmp_path: Path) -> None:
    procfs, kernel = overshooting_tree(tmp_path, [1.0])
    result = Backends(procfs, current(), FailingSecond(kernel.vmstat, [1.0])).reclaim(64 * MIB, None)
    assert (result.backend, result.requests, result.pages_reclaimed) == ("memory_reclaim", 1, 8 * MIB // 4096)
    assert result.failures == (f"memory_reclaim: part 2: {procfs.sys('fs/cgroup/memory.reclaim')}: writing '8388608' failed: Device or resource busy",)


def test_drop_caches_cannot_be_sized_and_runs_once(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path, cgroup=None)
    text = "backends:\n  drop_caches: {enabled: true}\nreclaim:\n  prefer: [drop_caches]\n"
    result = Backends(procfs, current(text)).reclaim(64 * MIB, None)
    assert (result.backend, result.requests) == ("drop_caches", 1)


def test_the_kept_value_goes_through_safefile(tmp_path: Path) -> None:
    procfs, pressure = pressure_tree(tmp_path, "10000\n")
    keep = tmp_path / "run"
    keep.mkdir(mode=0o755)
    backends = Backends(procfs, current(), keep_dir=str(keep))
    # A link planted where the value is kept: never followed (the kernel's value stays as it is).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("100\n")
    (keep / "vfs_cache_pressure.saved").symlink_to(elsewhere)
    with pytest.raises(ActionError, match="is a symbolic link: refusing to follow it"):
        backends.restore_cache_pressure()
    assert pressure.read_text() == "10000\n"
    os.unlink(keep / "vfs_cache_pressure.saved")
    # A directory others may write to: the value is not kept there, and the reclaim says so.
    os.chmod(keep, 0o777)
    pressure.write_text("100\n")
    result = backends.reclaim(8 << 20, 0, cache_pressure=10000)
    assert result.cache_pressure == 10000 and pressure.read_text() == "100\n"
    assert result.failures == (f"{keep}: writable by group or others (mode 0777): refusing to write there (not kept for a restart)",)
    assert list(keep.iterdir()) == []


# -- the registry ----------------------------------------------------------------------------


def test_the_schema_the_choices_and_the_kinds_come_from_the_registry() -> None:
    from shrinkd import configfile
    from shrinkd.actions import registry

    defaults = configfile.DEFAULTS
    assert list(defaults["backends"]) == list(registry.NAMES)
    for spec in registry.SPECS:
        assert defaults["backends"][spec.name] == {"enabled": spec.enabled, **{k: d for k, (d, _) in spec.options.items()}}
    assert defaults["reclaim"]["prefer"] == list(registry.RECLAIM_NAMES)
    assert registry.kinds(["compact"]) == {"compact"} and registry.kinds(["drop_caches"]) == {"reclaim"}
    with pytest.raises(KeyError, match="no backend 'bogus'"):
        registry.kinds(["bogus"])


def test_an_unknown_backend_name_is_an_error_never_a_fallback(tmp_path: Path) -> None:
    procfs = fake_tree(tmp_path)
    held = current()
    config = held.config
    held.config = config.replace(enabled=(*config.enabled, "bogus"), reclaim=config.reclaim.replace(prefer=("bogus",)))
    with pytest.raises(KeyError, match="no backend 'bogus'"):
        Backends(procfs, held)


def test_the_probe_finds_what_the_backends_would_use_and_says_why_not(tmp_path: Path) -> None:
    from shrinkd.actions import registry

    # memory.reclaim only where the hybrid layout mounts cgroup v2; no node reclaim files.
    procfs = fake_tree(tmp_path, cgroup="fs/cgroup/unified")
    probes = {probe.name: probe for probe in registry.probe(procfs, current().config)}
    assert list(probes) == list(registry.NAMES)
    reclaim = probes["memory_reclaim"]
    assert reclaim.usable and reclaim.paths == (str(tmp_path / "sys/fs/cgroup/unified/memory.reclaim"),)
    assert reclaim.kind == "reclaim" and reclaim.why == ""
    assert probes["compact"].usable and probes["compact"].paths[-1] == str(tmp_path / "proc/sys/vm/compact_memory")
    assert not probes["node_reclaim"].usable and probes["node_reclaim"].why.startswith("no nodeN/reclaim files")
    assert not probes["shrinkmem"].usable and probes["shrinkmem"].why.startswith("no shrinkmem device")
    # Present and writable, but off in the configuration (drop_caches is off by default).
    assert not probes["drop_caches"].usable and probes["drop_caches"].why == "disabled in the configuration"
    # The daemon's detection agrees with the probe.
    usable = [name for name, probe in probes.items() if probe.usable]
    assert Backends(procfs, current()).names() == usable == ["compact", "memory_reclaim"]
