"""`shrinkd doctor`: what this system can and cannot do for shrinkd, and why.

For bringing up a board: the kernel files shrinkd reads, PSI, every backend
(compaction, the shrinkmem module and its device node, memory.reclaim,
per-node reclaim, drop_caches), the kernel options that matter (from
/proc/config.gz or /boot/config-RELEASE), the orders the configuration's
rules resolve to, the files the configuration has shrinkd write, and whether
the systemd unit's sandbox lets it write each of them. The module's device is
found by enumerating devices with pyudev (the live /sys only; a --sys-root
tree is read directly).

Each check is ok, info, warn (shrinkd copes, with less) or fail (the
configuration asks for something this system lacks: exit code 2).
"""

from __future__ import annotations

import contextlib
import os
import stat

from .errors import EXIT_OK, EXIT_USAGE, ShrinkdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence, Tuple

    from .actions.spec import Probe
    from .config import Config
    from .procfs import ProcFS

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"

# Kernel options and what each means for shrinkd.
OPTIONS = (
    ("CONFIG_COMPACTION", "compaction (/proc/sys/vm/compact_memory, nodeN/compact)"),
    ("CONFIG_PSI", "PSI: wake-ups on memory pressure, triggers.psi"),
    ("CONFIG_PSI_DEFAULT_DISABLED", "PSI off unless psi=1 is on the kernel command line"),
    ("CONFIG_MEMCG", "cgroup v2 memory.reclaim (with 5.19 or later)"),
    ("CONFIG_NUMA", "per-node compaction and reclaim files"),
    ("CONFIG_TRANSPARENT_HUGEPAGE", "the huge order from hpage_pmd_size (never on PREEMPT_RT kernels)"),
    ("CONFIG_HUGETLBFS", "the huge order from hugetlb's Hugepagesize, without transparent huge pages"),
    ("CONFIG_HIBERNATION", "shrink_all_memory(), which the shrinkmem module calls: without it the module cannot load"),
    ("CONFIG_MODULES", "loading the shrinkmem module"),
    ("CONFIG_KPROBES", "the module's kprobe method (kernels that do not export shrink_all_memory)"),
    ("CONFIG_DEBUG_FS", "debugfs extfrag/ files, the kernel's own indexes to compare with"),
    ("CONFIG_MEMORY_HOTPLUG", "memory blocks going on- and offline"),
)

UNIT_PLACES = (
    "/etc/systemd/system/shrinkd.service",
    "/lib/systemd/system/shrinkd.service",
    "/usr/lib/systemd/system/shrinkd.service",
)
SOURCE_UNIT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "packaging", "systemd", "shrinkd.service")


class Check:
    __slots__ = ("area", "detail", "status", "what")

    def __init__(self, area: str, status: str, what: str, detail: str = "") -> None:
        self.area = area
        self.status = status
        self.what = what
        self.detail = detail


class Report:
    def __init__(self) -> None:
        self.checks: List[Check] = []

    def add(self, area: str, status: str, what: str, detail: str = "") -> None:
        self.checks.append(Check(area, status, what, detail))

    def exit_code(self) -> int:
        return EXIT_USAGE if any(check.status == FAIL for check in self.checks) else EXIT_OK

    def document(self) -> Dict[str, Any]:
        return {
            "checks": [
                {"area": c.area, "status": c.status, "what": c.what, "detail": c.detail} for c in self.checks
            ],
            "fail": sum(c.status == FAIL for c in self.checks),
            "warn": sum(c.status == WARN for c in self.checks),
        }

    def render(self) -> str:
        width = max((len(c.area) for c in self.checks), default=0)
        lines = []
        for check in self.checks:
            line = f"{check.status.upper():5s} {check.area:{width}s}  {check.what}"
            if check.detail:
                line += f" ({check.detail})"
            lines.append(line)
        fails = [c for c in self.checks if c.status == FAIL]
        warns = sum(c.status == WARN for c in self.checks)
        lines.append("")
        if fails:
            lines.append(f"{len(fails)} problem(s): the configuration asks for what this system lacks; {warns} warning(s)")
        else:
            lines.append(f"no problems; {warns} warning(s)")
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------


class System:
    """Where things are (all overridable, for fake trees)."""

    def __init__(
        self, procfs: ProcFS, boot: str = "/boot", modules: str = "/lib/modules", dev: str = "/dev", live: Optional[bool] = None
    ) -> None:
        self.procfs = procfs
        self.boot = boot
        self.modules = modules
        self.dev = dev
        self.live = procfs.sys_root == "/sys" if live is None else live  # pyudev reads the live /sys only

    def release(self) -> str:
        try:
            return self.procfs.read_text(self.procfs.proc("sys/kernel/osrelease")).strip()
        except ShrinkdError:
            return os.uname().release


def _exists(path: str) -> bool:
    return os.path.exists(path)


def kernel(report: Report, system: System) -> int:
    """Release, page size, orders; returns the number of orders (0 without buddyinfo)."""
    from . import parse

    procfs = system.procfs
    try:
        buddy = parse.parse_buddyinfo(procfs.read_text(procfs.proc("buddyinfo")), procfs.proc("buddyinfo"))
    except ShrinkdError as error:
        report.add("kernel", FAIL, f"cannot read the free lists: {error}")
        return 0
    orders = max((len(zone.free) for zone in buddy.zones), default=0)
    zones = ", ".join(f"node {z.node} {z.zone}" for z in buddy.zones)
    report.add("kernel", OK, f"Linux {system.release()}, page size {procfs.page_size()}, orders 0-{orders - 1}", zones)
    for name, why in (
        ("zoneinfo", "watermarks and zone sizes; watermark rules need it"),
        ("vmstat", "counters for triggers.vmstat, the thrash guard and reclaim counts"),
        ("pagetypeinfo", "the pageblock order (readable by root only)"),
    ):
        path = procfs.proc(name)
        if os.access(path, os.R_OK):
            report.add("proc", OK, f"{path} readable", why)
        else:
            report.add("proc", WARN, f"{path} not readable", why)
    return orders


def psi(report: Report, system: System, config: Config) -> None:
    from .procfs import PRESSURE, Tunables, psi_disabled

    path = system.procfs.proc(PRESSURE)
    asked = [t.name for t in config.triggers if t.reads_psi]
    status = FAIL if asked else WARN
    try:
        with open(path, "rb") as handle:
            handle.read()
    except OSError as error:
        if psi_disabled(error):
            why = "PSI is built but disabled: add psi=1 to the kernel command line"
        elif error.errno is not None and not os.path.exists(path):
            why = "no PSI in this kernel (CONFIG_PSI)"
        else:
            why = os.strerror(error.errno or 0)
        report.add("psi", status, f"{path}: {why}", f"needed by {', '.join(asked)}" if asked else "shrinkd polls instead")
        return
    if not config.psi.wakeup:
        report.add("psi", OK, f"{path} readable", "psi.wakeup is off")
        return
    spec = f"{config.psi.kind} {config.psi.stall_ms * 1000} {config.psi.window_ms * 1000}"
    try:
        fd = Tunables().arm(path, spec)
    except OSError as error:
        report.add("psi", WARN, f"{path}: cannot arm the trigger '{spec}': {os.strerror(error.errno or 0)}", "shrinkd polls instead")
        return
    os.close(fd)
    report.add("psi", OK, f"{path}: trigger '{spec}' armed", "wakes shrinkd on memory pressure")


def backends(report: Report, system: System, config: Config, probes: Sequence[Probe]) -> Dict[str, List[str]]:
    """Each backend of the registry, as its probe found it (the daemon finds them so: actions.registry.probe);
    returns the writable paths each usable backend uses. The shrinkmem module is examined in
    detail too (module())."""
    found: Dict[str, List[str]] = {}
    for probe in probes:
        note = "" if probe.enabled else "; disabled in the configuration"
        if probe.name == "shrinkmem" and not module(report, system, config):
            continue  # module() said why
        if probe.usable:
            found[probe.name] = list(probe.writable)
        if not probe.paths:
            report.add("backend", WARN if probe.enabled else INFO, f"{probe.name}: {probe.why}", probe.what + note)
            continue
        shown = ", ".join(probe.paths[:3]) + (f" and {len(probe.paths) - 3} more" if len(probe.paths) > 3 else "")
        if probe.usable or (probe.writable and not probe.enabled):
            report.add("backend", OK if probe.enabled else INFO, f"{probe.name}: {shown}", probe.what + note)
        elif not probe.writable:
            report.add("backend", WARN if probe.enabled else INFO, f"{probe.name}: {shown} not writable by this user", probe.what + note)
        else:
            report.add("backend", WARN if probe.enabled else INFO, f"{probe.name}: {shown}: {probe.why}", probe.what + note)
    return found


def reclaim(report: Report, config: Config, probes: Sequence[Probe], usable: Dict[str, List[str]]) -> None:
    """The reclaim backends shrinkd run would have, and why not each other one, one line each: the
    lines its started event and `shrinkd status` give (judgement.reclaim_backends), judged as root."""
    from . import judgement

    passed = {probe.name for probe in probes if probe.usable}
    found = [
        (name, "present, but it failed the module checks above" if why is None and name in passed and name not in usable else why)
        for name, why in judgement.reclaim_backends(probes, config.reclaim.prefer, as_root=True)
    ]
    summary = judgement.reclaim_summary(found)
    if any(why is None for _, why in found):
        report.add("reclaim", OK, f"reclaim backends: {summary}", "in the order reclaim tries them")
    else:
        report.add("reclaim", WARN, f"reclaim backends: {summary}")
    for line in judgement.reclaim_lines(found):
        report.add("reclaim", INFO, line)


def _module_file(system: System) -> Optional[str]:
    release = system.release()
    try:
        with open(os.path.join(system.modules, release, "modules.dep"), encoding="utf-8", errors="replace") as handle:
            for line in handle:
                name = line.split(":", 1)[0]
                if os.path.basename(name).startswith("shrinkmem.ko"):
                    return os.path.join(system.modules, release, name)
    except OSError:
        pass
    return None


def _device(system: System, device: str) -> Tuple[Optional[str], Optional[str], str]:
    """(device node, "major:minor", how it was found) of the shrinkmem misc device."""
    name = os.path.basename(device)
    if system.live:
        try:
            import pyudev
        except ImportError:
            how = "pyudev missing (apt install python3-pyudev or pip install pyudev): read /sys/class/misc"
        else:
            context = pyudev.Context()
            for found in context.list_devices(subsystem="misc", sys_name=name):
                return found.device_node, f"{found.properties.get('MAJOR')}:{found.properties.get('MINOR')}", "udev"
            return None, None, "udev"
    else:
        how = f"read {system.procfs.sys('class/misc')}"
    try:
        number = system.procfs.read_text(system.procfs.sys(f"class/misc/{name}/dev")).strip()
    except ShrinkdError:
        return None, None, how
    return os.path.join(system.dev, name), number, how


def module(report: Report, system: System, config: Config) -> bool:
    """The shrinkmem module: present, loaded, its device node and permissions, its method. True when usable."""
    from . import shrinkmem

    enabled = config.backend_enabled("shrinkmem")
    missing = WARN if enabled else INFO
    note = "" if enabled else "; disabled in the configuration"
    path = _module_file(system)
    loaded = _exists(system.procfs.sys("module/shrinkmem"))
    if not loaded:
        where = f"installed at {path}" if path else f"not installed for {system.release()} (kmod/, or the shrinkmem-dkms package)"
        report.add("module", missing, f"shrinkmem not loaded; {where}", "the other reclaim backends are used" + note)
        return False
    report.add("module", OK, "shrinkmem loaded" + (f" ({path})" if path else " (not from this kernel's module tree)"))
    node, number, how = _device(system, config.shrinkmem_device)
    if node is None:
        report.add("module", FAIL if enabled else INFO, f"no {os.path.basename(config.shrinkmem_device)} misc device", f"looked up by {how}")
        return False
    try:
        status = os.stat(node)
    except OSError as error:
        report.add("module", FAIL if enabled else INFO, f"{node}: {os.strerror(error.errno or 0)}", f"device {number}, found by {how}; is udev running?")
        return False
    mode = stat.filemode(status.st_mode)
    actual = f"{os.major(status.st_rdev)}:{os.minor(status.st_rdev)}"
    detail = f"{mode} uid {status.st_uid} gid {status.st_gid}, device {actual}, found by {how}"
    if not stat.S_ISCHR(status.st_mode) or (number is not None and actual != number):
        report.add("module", FAIL if enabled else INFO, f"{node} is not the shrinkmem device ({number})", detail)
        return False
    if node != config.shrinkmem_device and os.path.realpath(node) != os.path.realpath(config.shrinkmem_device):
        report.add("module", WARN, f"the device is {node}, the configuration says {config.shrinkmem_device}", detail)
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH | stat.S_IRGRP | stat.S_IROTH):
        report.add("module", WARN, f"{node} can be opened by others than root", detail + "; requests still need CAP_SYS_ADMIN")
    else:
        report.add("module", OK, f"{node}", detail)
    try:
        with shrinkmem.ShrinkMem(node) as dev:
            try:
                info = dev.info()
                method, abi, how_told = info.method, str(info.abi_version), "INFO ioctl"
                extra = f", largest request {info.max_pages} pages"
            except ShrinkdError:
                summary = dev.summary()
                method, abi, how_told, extra = summary.get("method", "?"), summary.get("abi_version", "?"), "read()", ""
    except ShrinkdError as error:
        report.add("module", FAIL if enabled else INFO, f"cannot use {node}: {error}")
        return False
    if abi != str(shrinkmem.ABI_VERSION):
        report.add("module", FAIL if enabled else INFO, f"module ABI {abi}, this shrinkd speaks {shrinkmem.ABI_VERSION}", "rebuild one of the two")
        return False
    report.add("module", OK, f"reaches shrink_all_memory() by {method} (the {how_told} says), ABI {abi}{extra}")
    return enabled


def kernel_options(report: Report, system: System) -> None:
    text, source = None, ""
    gz = system.procfs.proc("config.gz")
    unread = f"no {gz}"  # why /proc/config.gz was not read
    if _exists(gz):
        try:
            import gzip
        except ImportError as error:  # a Python without zlib (Buildroot without BR2_PACKAGE_PYTHON3_ZLIB)
            unread = f"{gz} cannot be read: this Python has no gzip ({error}; built without zlib?)"
        else:
            try:
                with gzip.open(gz, "rt", encoding="utf-8", errors="replace") as handle:
                    text, source = handle.read(), gz
            except OSError as error:
                unread = f"{gz} cannot be read: {error.strerror or error}"
    if text is None:
        path = os.path.join(system.boot, f"config-{system.release()}")
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text, source = handle.read(), path
        except OSError:
            report.add("options", INFO, f"kernel options unknown: {unread}, no {path}")
            return
        if unread != f"no {gz}":
            report.add("options", INFO, f"{unread}; the options below are {path}'s")
    values: Dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            values[line[2:].split()[0]] = "n"
    try:
        cmdline = system.procfs.read_text(system.procfs.proc("cmdline")).split()
    except ShrinkdError:
        cmdline = []
    for option, why in OPTIONS:
        value = values.get(option, "n")
        unwanted = option == "CONFIG_PSI_DEFAULT_DISABLED"
        on = value in ("y", "m")
        status = INFO if not (on ^ unwanted) and option in ("CONFIG_DEBUG_FS", "CONFIG_MEMORY_HOTPLUG", "CONFIG_KPROBES", "CONFIG_HUGETLBFS") else (OK if on ^ unwanted else WARN)
        if unwanted and on and "psi=1" in cmdline:  # the kernel's last psi= wins; psi=1 turns it on
            status, why = OK, why + "; psi=1 is on this kernel's command line"
        report.add("options", status, f"{option}={value}", f"{why}; from {source}")


def orders(report: Report, system: System, config: Config, count: int) -> None:
    from .report import huge_text

    procfs = system.procfs
    named = procfs.named_orders(procfs.page_size())
    report.add("orders", OK, ", ".join(f"{name} = {'unknown' if order is None else order}" for name, order in named.items()),
               "what the order names stand for on this kernel")
    huge, origin = procfs.huge_order(procfs.page_size())
    report.add("orders", OK if huge is not None else INFO, huge_text(huge, origin))
    for rule in config.rules:
        for given, order in rule.resolved_orders(named):
            if order is not None and not (count and order >= count):  # the others: judge() below
                shown = str(order) if given == order else f"{given} = {order}"
                report.add("orders", OK, f"rule {rule.name}: order {shown}")
        if rule.watermark is not None and not os.access(procfs.proc("zoneinfo"), os.R_OK):
            report.add("orders", FAIL, f"rule {rule.name}: watermark needs /proc/zoneinfo")


def triggers(report: Report, system: System, config: Config) -> None:
    from . import parse
    from .conditions import counter

    vmstat: Dict[str, int] = {}
    with contextlib.suppress(ShrinkdError):
        vmstat = parse.parse_vmstat(system.procfs.read_text(system.procfs.proc("vmstat")), system.procfs.proc("vmstat"))
    for trigger in config.triggers:
        for name in trigger.counters:
            if counter(vmstat, name) is None:
                report.add("triggers", FAIL, f"{trigger.name}: no {name} in /proc/vmstat")
            else:
                report.add("triggers", OK, f"{trigger.name}: /proc/vmstat has {name}")


def rules_can_act(report: Report, config: Config, usable: Dict[str, List[str]]) -> None:
    from .actions import registry

    compact = "compact" in usable
    reclaim = [name for name in config.reclaim.prefer if name in usable and name in registry.RECLAIM_NAMES]
    for rule in config.rules:
        if (rule.watermark is not None and not reclaim) or (not compact and not (rule.reclaim and reclaim)):
            continue  # judge() below says it
        else:
            ways = (["compact"] if compact else []) + (reclaim[:1] if rule.reclaim else [])
            report.add("rules", OK, f"rule {rule.name}: acts by {', then '.join(ways)}")


def outputs(report: Report, config: Config) -> List[str]:
    """The files the configuration has shrinkd write; their directories checked as the daemon will."""
    from .safefile import OutputError, check_target

    paths = []
    for key, path in (("record.path", config.record.path), ("prometheus.textfile", config.prometheus.textfile)):
        if path is None:
            continue
        paths.append(path)
        with contextlib.suppress(OutputError):  # an objection: judge() below says it
            check_target(path)
            report.add("outputs", OK, f"{key}: {path} can be written")
    return paths


def judge(report: Report, procfs: ProcFS, config: Config, probes: Sequence[Probe]) -> None:
    """The judgement check-config and run share (shrinkd.judgement): an error is a FAIL, a warning a WARN
    (its notes, missing backends, are the backend checks' above, whose probe it is handed)."""
    from . import judgement

    verdict, why = judgement.examine(procfs, config, as_root=True, probes=probes)
    for text in verdict.errors:
        report.add("config", FAIL, text, "shrinkd run refuses this configuration")
    for text in verdict.warnings:
        report.add("config", WARN, text, "shrinkd run starts and says so")
    unchecked = judgement.unchecked_line(verdict, why)
    if unchecked:
        report.add("config", WARN, unchecked)


# ---------------------------------------------------------------------------
# The unit's sandbox.


def read_unit(path: str) -> Dict[str, List[str]]:
    """The [Service] settings of a unit file and its drop-ins (key -> values, in order; an empty value resets)."""
    settings: Dict[str, List[str]] = {}
    files = [path]
    for folder in ("/etc/systemd/system/shrinkd.service.d", "/run/systemd/system/shrinkd.service.d"):
        with contextlib.suppress(OSError):
            files += sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".conf"))
    for name in files:
        section = ""
        with open(name, encoding="utf-8") as handle:
            for raw in handle:
                line = raw.strip()
                if not line or line.startswith(("#", ";")):
                    continue
                if line.startswith("["):
                    section = line
                    continue
                if section != "[Service]" or "=" not in line:
                    continue
                key, _, value = line.partition("=")
                if value.strip():
                    settings.setdefault(key.strip(), []).append(value.strip())
                else:
                    settings[key.strip()] = []
    return settings


def _covered(path: str, allowed: Sequence[str]) -> bool:
    path = os.path.normpath(path)
    return any(path == a or path.startswith(a.rstrip("/") + "/") for a in allowed)


def live_path(procfs: ProcFS, path: str) -> str:
    """Where a file under --proc-root or --sys-root is on the system the unit runs on."""
    for root, real in ((procfs.proc_root, "/proc"), (procfs.sys_root, "/sys")):
        if root != real and (path == root or path.startswith(root.rstrip("/") + "/")):
            return real + path[len(root.rstrip("/")) :]
    return path


def sandbox(report: Report, unit: Optional[str], writes: Dict[str, List[str]], files: Sequence[str], device: str) -> None:
    if unit is None:
        unit = next((place for place in UNIT_PLACES if _exists(place)), SOURCE_UNIT if _exists(SOURCE_UNIT) else None)
    if unit is None:
        report.add("sandbox", INFO, "no shrinkd.service found: the sandbox was not checked")
        return
    try:
        settings = read_unit(unit)
    except OSError as error:
        report.add("sandbox", FAIL, f"{unit}: cannot read: {error.strerror or error}")
        return
    protect = (settings.get("ProtectSystem") or ["no"])[-1]
    allowed = [os.path.normpath(p.lstrip("-+")) for v in settings.get("ReadWritePaths", []) for p in v.split()]
    allowed += [os.path.join("/var/lib", d) for v in settings.get("StateDirectory", []) for d in v.split()]
    tunables = (settings.get("ProtectKernelTunables") or ["no"])[-1] == "yes"
    report.add("sandbox", INFO, f"{unit}: ProtectSystem={protect}, {len(allowed)} writable path(s)")

    def writable(path: str) -> bool:
        if _covered(path, allowed):
            return True
        if protect == "strict":
            return False
        if tunables and (path.startswith("/proc/sys/") or path.startswith("/sys/")):
            return False
        return not ((protect in ("yes", "full", "true") and path.startswith(("/usr/", "/boot/", "/efi/"))) or (protect == "full" and path.startswith("/etc/")))

    for backend, paths in sorted(writes.items()):
        if backend == "shrinkmem":
            policy = (settings.get("DevicePolicy") or ["auto"])[-1]
            allowed_devices = [v.split()[0] for v in settings.get("DeviceAllow", [])]
            ok = (policy == "auto" and not settings.get("DeviceAllow")) or device in allowed_devices
            report.add("sandbox", OK if ok else FAIL, f"shrinkmem: {device} " + ("allowed" if ok else "not in DeviceAllow="))
            continue
        for path in paths:
            ok = writable(path)
            report.add("sandbox", OK if ok else FAIL, f"{backend}: {path} " + ("writable" if ok else "read-only under the unit"),
                       "" if ok else f"add ReadWritePaths=-{path} in a drop-in (systemctl edit shrinkd)")
    folders: Dict[str, List[str]] = {}
    for path in files:
        folders.setdefault(os.path.dirname(path), []).append(path)
    for folder, names in folders.items():
        ok = writable(folder)
        report.add("sandbox", OK if ok else FAIL, f"{folder} " + ("writable" if ok else "read-only under the unit"),
                   f"for {', '.join(names)}" + ("" if ok else f"; add ReadWritePaths={folder} in a drop-in (systemctl edit shrinkd)"))


def examine(
    procfs: ProcFS, config_file: Optional[str] = None, unit: Optional[str] = None, system: Optional[System] = None
) -> Report:
    from . import configload

    report = Report()
    system = system or System(procfs)
    try:
        config = configload.load(configload.resolve(config_file))
    except ShrinkdError as error:
        report.add("config", FAIL, str(error))
        return report
    report.add("config", OK, f"{', '.join(config.sources)}: {len(config.rules)} rules, backends enabled: {', '.join(config.enabled)}")
    from .actions import registry

    count = kernel(report, system)
    psi(report, system, config)
    probes = registry.probe(system.procfs, config)  # once: the backend checks and the judgement read it
    usable = backends(report, system, config, probes)
    reclaim(report, config, probes, usable)
    rules_can_act(report, config, usable)
    orders(report, system, config, count)
    triggers(report, system, config)
    kernel_options(report, system)
    files = outputs(report, config)
    judge(report, procfs, config, probes)
    live = {name: [live_path(procfs, path) for path in paths] for name, paths in usable.items()}
    if config.reclaim.vfs_cache_pressure is not None and set(usable) - {"compact"}:
        # raised for the length of a reclaim that follows a compaction
        live["vfs_cache_pressure"] = [live_path(procfs, procfs.proc("sys/vm/vfs_cache_pressure"))]
    sandbox(report, unit, live, files, config.shrinkmem_device)
    return report
