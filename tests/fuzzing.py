"""Property-based fuzzing of every parser: what is fed in, and which outcomes are allowed.

Inputs are mostly mutations of real ones (files captured from Debian kernels in
tests/fixtures, uevent datagrams as the kernel sends them, the documented
configuration), so that they get past the first line and into the parsers'
corners: lines dropped, repeated, swapped, cut or joined, tokens replaced with
numbers that are too big, negative, not ASCII or not numbers, separators and
whitespace the kernel never prints, lines of another file spliced in. Some are
plain random text.

A target is a name, a generator and a check. The check runs the parser and
returns the outcome ("parsed" or "error"); the documented error (InputError
for a /proc file or a kernel log record, ConfigError for a configuration file)
must be one line that starts with the file's name. Any other exception is a bug.

A generator makes its choices through a Chooser: under Hypothesis (Draws, each
choice a draw, so that a failing input shrinks to a small one and CI sees the
same inputs every run) or from a seeded PRNG (Seeded: the same generators a
hundred times cheaper per input, for the benchmark's volume; Hypothesis then
draws the seeds). tests/test_fuzz.py runs every target with a small count in
CI; bench/fuzz.py runs at least 100,000 inputs of each and prints counts and rates.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from hypothesis import strategies as st

from shrinkd import config, configfile, parse, policy, udevwatch
from shrinkd.conditions import counter_keys
from shrinkd.errors import ConfigError, InputError

REPO = Path(__file__).resolve().parent.parent
KERNELS = REPO / "tests" / "fixtures" / "kernels"
OLD_KERNEL = REPO / "tests" / "fixtures" / "seed-3.3"

PARSED = "parsed"
ERROR = "error"


class Bug(AssertionError):
    """An outcome the contract does not allow: an exception other than the documented error,
    a documented error that is not one line naming the file, or a parsed value of the wrong shape."""


def _captured(name: str) -> List[str]:
    texts = sorted({path.read_text() for path in KERNELS.glob(f"*/proc/{name}")})
    assert texts, f"no captured {name}"
    return texts


def _old(prefix: str) -> List[str]:
    return [path.read_text() for path in sorted(OLD_KERNEL.glob(f"{prefix}*"))]


# /proc/pagetypeinfo's head as the kernels print it (mm/vmstat.c pagetypeinfo_showfree):
# 4K pages on x86_64 and arm64, 16K and 64K pages on arm64, and a 3.x kernel's layout.
PAGETYPEINFO = [
    "Page block order: 9\nPages per block:  512\n\n"
    "Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 \n"
    "Node    0, zone      DMA, type    Unmovable      0      0      0      0      0      0      0      0      1      0      0 \n",
    "Page block order: 11\nPages per block:  2048\n\n"
    "Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10     11 \n",
    "Page block order: 13\nPages per block:  8192\n\n",
    "Page block order: 10\nPages per block:  1024\n\n",
]

# Datagrams as the kernel sends them on NETLINK_KOBJECT_UEVENT (lib/kobject_uevent.c:
# "ACTION@DEVPATH\0KEY=VALUE\0..."), and udevd's own "libudev" messages on the other group.
UEVENTS = [
    b"add@/devices/virtual/misc/shrinkmem\0ACTION=add\0DEVPATH=/devices/virtual/misc/shrinkmem\0"
    b"SUBSYSTEM=misc\0MAJOR=10\0MINOR=122\0DEVNAME=shrinkmem\0SEQNUM=2301\0",
    b"remove@/devices/virtual/misc/shrinkmem\0ACTION=remove\0DEVPATH=/devices/virtual/misc/shrinkmem\0"
    b"SUBSYSTEM=misc\0MAJOR=10\0MINOR=122\0DEVNAME=shrinkmem\0SEQNUM=2399\0",
    b"offline@/devices/system/memory/memory32\0ACTION=offline\0DEVPATH=/devices/system/memory/memory32\0"
    b"SUBSYSTEM=memory\0SEQNUM=2302\0",
    b"online@/devices/system/memory/memory32\0ACTION=online\0DEVPATH=/devices/system/memory/memory32\0"
    b"SUBSYSTEM=memory\0SEQNUM=2303\0",
    b"add@/module/shrinkmem\0ACTION=add\0DEVPATH=/module/shrinkmem\0SUBSYSTEM=module\0SEQNUM=2300\0",
    b"bind@/devices/pci0000:00/0000:00:1f.2\0ACTION=bind\0DEVPATH=/devices/pci0000:00/0000:00:1f.2\0"
    b"SUBSYSTEM=pci\0DRIVER=ahci\0PCI_CLASS=10601\0MODALIAS=pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01\0SEQNUM=1200\0",
    b"change@/devices/virtual/misc/shrinkmem\0ACTION=change\0DEVPATH=/devices/virtual/misc/shrinkmem\0SUBSYSTEM=misc\0SEQNUM=2400\0",
    b"libudev\0\xfe\xed\xca\xfe\x28\x00\x00\x00\x28\x00\x00\x00\x9d\x00\x00\x00\x12\x34\x56\x78",
]

# Records as read() from /dev/kmsg returns them (Documentation/ABI/testing/dev-kmsg):
# "PRIO,SEQ,TS_USEC,FLAGS;MESSAGE\n" then " KEY=value" lines; warn_alloc()'s report as
# 6.1 and 3.x kernels print it, and other records around it.
KMSG = [
    b"4,900,5000000,-;bash: page allocation failure: order:9, mode:0x800(GFP_NOWAIT), nodemask=(null)\n",
    b"4,1201,83000111,-;kworker/u4:2: page allocation failure: order:10, mode:0x40cc0(GFP_KERNEL|__GFP_COMP), "
    b"nodemask=(null),cpuset=/,mems_allowed=0\n",
    b"4,77,1200333,-;insmod: page allocation failure: order:4, mode:0x100cca(GFP_HIGHUSER_MOVABLE), nodemask=(null)\n",
    b"4,12,450000,-;swapper/0: page allocation failure. order:3, mode:0x20\n",
    b"6,898,4000000,-;usb 1-1: new high-speed USB device number 2 using ehci-pci\n SUBSYSTEM=usb\n DEVICE=c189:1\n",
    b"4,901,5000100,c;CPU: 1 PID: 123 Comm: bash Not tainted 6.1.0-56-amd64 #1 Debian 6.1.158-1\n",
    b"12,2000,9000000,-;systemd[1]: Started shrinkd.service - Memory fragmentation watchdog.\n",
    b"3,55,600000,-;Out of memory: Killed process 4242 (hog) total-vm:1048576kB, anon-rss:900000kB\n",
]

_CONFIG_EXTRA = """
rules:
  - name: huge
    zones: [DMA32, Normal]
    node: 0
    orders: [9, huge, 3]
    min_zone_size: 64MiB
    unusable_index: {trigger: 0.9, clear: 0.5}
    extfrag_index: {trigger: 0.6, clear: 0.2}
    sustain: 2
  - name: low
    zones: ["*"]
    orders: [0]
    watermark: {below: low, clear: high}
    reclaim: true
triggers:
  psi: {kind: some, avg10: 20, clear: 5, sustain: 2}
  vmstat:
    - {counter: compact_stall, rate: 10, clear: 1}
    - {counter: allocstall, rate: 5.5, clear: 0.5, sustain: 3}
backends:
  shrinkmem: {enabled: true, device: /dev/shrinkmem}
  drop_caches: {enabled: false, what: both}
reclaim:
  prefer: [shrinkmem, memory_reclaim]
  min: 1M
  max_per_event: 512M
  max_per_hour: 1G
  sync: true
guards:
  cooldown: 60
  thrash: {watch: 30, refault_factor: 2.5, refault_min: 50, psi_some_avg10: 10, backoff: 300, backoff_max: 3600}
log: {target: stderr, debug: false}
poll: {min_interval: 0.5, max_interval: 10, approach: 0.75}
psi: {wakeup: false, kind: full, stall_ms: 150, window_ms: 1000}
dry_run: true
"""
CONFIGS = [(REPO / "config" / "shrinkd.yaml").read_text(), _CONFIG_EXTRA, "guards:\n  cooldown: 30\n", ""]

SAMPLES: Dict[str, List[str]] = {
    "buddyinfo": _captured("buddyinfo") + _old("buddyinfo"),
    "zoneinfo": _captured("zoneinfo"),
    "vmstat": _captured("vmstat"),
    "meminfo": _captured("meminfo"),
    # and a kernel without the `full` line
    "pressure": [*_captured("pressure/memory"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"],
    "pagetypeinfo": PAGETYPEINFO,
    "config": CONFIGS,
}

# Tokens the kernel never prints where a number or a keyword goes.
NASTY = [
    "",
    "0",
    "-1",
    "-0",
    "+7",
    "007",
    "18446744073709551616",
    "9" * 5000,
    "1e3",
    "1.5",
    "nan",
    "inf",
    "-inf",
    "0x10",
    "1_000",
    "\u00b2",  # superscript two: str.isdigit() says yes, int() says no
    "\u0663",  # Arabic-Indic three: int() reads it
    "\uff11",  # fullwidth one
    "\ufffd",  # what a non-ASCII byte in a /proc file decodes to
    "\x00",
    "Node",
    "zone",
    "Node 0,",
    ",",
    ":",
    "=",
    "==",
    "kB",
    "some",
    "full",
    "avg10=",
    "total=-1",
    "avg10=nan",
    "pages",
    "free",
    "managed",
    "high:",
    "Page block order:",
    "ACTION=",
    "@",
    "!!python/object:os.system",
    "!!binary",
    "!!timestamp",
    "!!int",
    "!!float",
    "!!bool",
    "&a",
    "*a",
    "&a [*a]",
    "? |\n  a\n  b\n:",
    "<<",
    "{",
    "[",
    "?",
    "|",
    "'",
    '"',
    "#",
    "~",
    "null",
    "true",
    "yes",
    "64M",
    "64MiB",
    "\u00b2M",
    "0M",
    "999999999999999999999G",
    "2001-12-14",
    "2001-13-45",
    ".nan",
    "1e400",
    "huge",
    "costly",
]
# Separators and line ends: str.split() and splitlines() take more than the kernel writes.
WHITESPACE = [" ", "  ", "\t", "\r", "\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u00a0", "\u3000", "\r\n"]

# What may stand where the kernel prints digits: numbers too large or negative, and digits Python reads differently.
NUMBERS = [t for t in NASTY if t and (t[-1].isdigit() or t[-1].isnumeric() or t in ("nan", "inf", "-inf"))] + [
    "",
    "-",
    " ",
]
DIGITS = re.compile(r"\d+")

T = TypeVar("T")


# -- choosing ----------------------------------------------------------------------------------


class Chooser:
    """Where a generator's choices come from: a few primitives, and what is built on them."""

    def integer(self, low: int, high: int) -> int:
        raise NotImplementedError

    def text(self, max_size: int, alphabet: Optional[str] = None) -> str:
        raise NotImplementedError

    def binary(self, max_size: int) -> bytes:
        raise NotImplementedError

    def real(self) -> float:
        raise NotImplementedError

    def pick(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def some(self, options: Sequence[T], max_size: int) -> List[T]:
        """Up to `max_size` distinct options, in the order chosen."""
        chosen: List[T] = []
        for _ in range(self.integer(0, max_size)):
            option = self.pick(options)
            if option not in chosen:
                chosen.append(option)
        return chosen

    def big(self) -> str:
        return str(self.integer(-(2**70), 2**70))

    def token(self) -> str:
        """What replaces a word: a nasty token, any short text, or a number."""
        how = self.integer(0, 2)
        return self.pick(NASTY) if how == 0 else self.text(12) if how == 1 else self.big()

    def number(self) -> str:
        """What replaces the digits inside a word."""
        return self.pick(NUMBERS) if self.integer(0, 1) == 0 else self.big()

    def scalar(self) -> Any:
        """A YAML value of any type."""
        how = self.integer(0, 5)
        if how == 0:
            return self.pick(NASTY)
        if how == 1:
            return self.integer(-(2**64), 2**64)
        if how == 2:
            return self.real()
        if how == 3:
            return self.pick([True, False])
        if how == 4:
            return None
        return self.text(10)


class Draws(Chooser):
    """Every choice a Hypothesis draw."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def text(self, max_size: int, alphabet: Optional[str] = None) -> str:
        return self.draw(st.text(alphabet=alphabet, max_size=max_size) if alphabet else st.text(max_size=max_size))

    def binary(self, max_size: int) -> bytes:
        return self.draw(st.binary(max_size=max_size))

    def real(self) -> float:
        return self.draw(st.floats(allow_nan=True, allow_infinity=True))


# Where Seeded's random characters come from: mostly ASCII, some control characters, any code point
# but surrogates (as Hypothesis's text() does).
_PRINTABLE = "".join(chr(c) for c in range(32, 127))
_CONTROL = "".join(chr(c) for c in (*range(0, 32), 127))


class Seeded(Chooser):
    """Choices from a seeded PRNG: the benchmark's volume at a fraction of a draw's cost."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        if high - low > 1 << 20 and self.rng.random() < 0.5:  # small values often, as Hypothesis does
            return max(low, min(high, self.rng.randint(-1000, 1000)))
        return self.rng.randint(low, high)

    def _length(self, max_size: int) -> int:
        return min(int(self.rng.expovariate(4.0 / (max_size + 1))), max_size)

    def text(self, max_size: int, alphabet: Optional[str] = None) -> str:
        rng = self.rng
        if alphabet:
            return "".join(rng.choice(alphabet) for _ in range(self._length(max_size)))
        chars = []
        for _ in range(self._length(max_size)):
            kind = rng.random()
            if kind < 0.6:
                chars.append(rng.choice(_PRINTABLE))
            elif kind < 0.75:
                chars.append(rng.choice(_CONTROL))
            else:
                code = rng.randrange(0x110000 - 0x800)
                chars.append(chr(code + 0x800 if code >= 0xD800 else code))
        return "".join(chars)

    def binary(self, max_size: int) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(self._length(max_size)))

    def real(self) -> float:
        how = self.rng.random()
        if how < 0.2:
            return self.rng.choice([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e308, 5e-324])
        return self.rng.uniform(-1e6, 1e6) if how < 0.7 else self.rng.random()


# -- the generators ---------------------------------------------------------------------------


def mutated(c: Chooser, kind: str) -> str:
    """A captured `kind` file with a few mutations, sometimes many."""
    lines = c.pick(SAMPLES[kind]).split("\n")
    for _ in range(c.integer(0, 8)):
        how = c.integer(0, 15)
        if not lines:
            lines = [""]
        at = c.integer(0, len(lines) - 1)
        if how == 0:  # drop a line
            del lines[at]
        elif how == 1:  # repeat a line, sometimes many times
            lines[at:at] = [lines[at]] * c.pick([1, 2, 50])
        elif how == 2:  # swap two lines
            other = c.integer(0, len(lines) - 1)
            lines[at], lines[other] = lines[other], lines[at]
        elif how in (3, 4, 5):  # replace a token
            words = lines[at].split(" ")
            words[c.integer(0, len(words) - 1)] = c.token()
            lines[at] = " ".join(words)
        elif how == 6:  # cut a line
            lines[at] = lines[at][: c.integer(0, len(lines[at]))]
        elif how == 7:  # join a line with the next
            if at + 1 < len(lines):
                lines[at : at + 2] = [lines[at] + c.pick(["", " "]) + lines[at + 1]]
        elif how == 8:  # split a line
            cut = c.integer(0, len(lines[at]))
            lines[at : at + 1] = [lines[at][:cut], lines[at][cut:]]
        elif how == 9:  # change a separator
            lines[at] = lines[at].replace(c.pick([" ", ":", "=", ","]), c.pick(WHITESPACE), 1)
        elif how == 10:  # a line of another file
            donor = c.pick([t for k, ts in SAMPLES.items() if k != kind for t in ts]).split("\n")
            lines.insert(at, c.pick(donor))
        elif how == 11:  # a random line
            lines.insert(at, c.text(40))
        elif how == 12:  # a random character somewhere
            cut = c.integer(0, len(lines[at]))
            lines[at] = lines[at][:cut] + (c.text(1) or "\x00") + lines[at][cut:]
        elif how in (13, 14):  # replace a number inside a token ("Node 0," -> "Node ²,")
            runs = list(DIGITS.finditer(lines[at]))
            if runs:
                run = c.pick(runs)
                lines[at] = lines[at][: run.start()] + c.number() + lines[at][run.end() :]
        else:  # cut the file short
            lines = lines[: at + 1]
            lines[-1] = lines[-1][: c.integer(0, len(lines[-1]))]
    return "\n".join(lines)


_ALPHABETS = {kind: "".join(sorted(set("".join(texts)) | set(" \n\t:=,-"))) for kind, texts in SAMPLES.items()}


def text_for(kind: str) -> Callable[[Chooser], str]:
    """Mostly mutated captures; some random text, mostly in the alphabet of the files."""

    def generate(c: Chooser) -> str:
        how = c.integer(0, 4)
        if how < 3:
            return mutated(c, kind)
        return c.text(400, _ALPHABETS[kind]) if how == 3 else c.text(200)

    return generate


_UEVENT_FIELDS = [
    b"SUBSYSTEM=misc",
    b"SUBSYSTEM=memory",
    b"ACTION=online",
    b"DEVNAME=shrinkmem",
    b"DEVPATH=/",
    b"DEVPATH=",
    b"@",
    b"=",
    b"\xff\xfe",
]
_NASTY_BYTES = [t.encode("utf-8", "surrogatepass") for t in NASTY]


def uevent(c: Chooser) -> bytes:
    """Kernel uevent datagrams with fields dropped, changed, repeated, cut; some random bytes."""
    if c.integer(0, 9) == 0:
        return c.binary(300)
    parts = c.pick(UEVENTS).split(b"\0")
    for _ in range(c.integer(0, 6)):
        how = c.integer(0, 6)
        if not parts:
            parts = [b""]
        at = c.integer(0, len(parts) - 1)
        if how == 0:
            del parts[at]
        elif how == 1:
            parts.insert(at, parts[at])
        elif how == 2:  # a value changed
            value = c.pick(_NASTY_BYTES) if c.integer(0, 1) else c.binary(20)
            parts[at] = parts[at].partition(b"=")[0] + b"=" + value
        elif how == 3:
            parts[at] = parts[at][: c.integer(0, len(parts[at]))]
        elif how == 4:
            parts.insert(at, c.pick(_UEVENT_FIELDS))
        elif how == 5:
            parts[at] = parts[at].replace(b"@", c.pick([b"", b"@@", b"\0"]))
        else:
            parts.insert(at, c.binary(30))
    return b"\0".join(parts)


_KMSG_SEPARATORS = [",", ";", ":", "(", ")", "|", " ", "order:", "mode:", "page allocation failure"]


def kmsg_record(c: Chooser) -> bytes:
    """Records with their header and message mutated as text (numbers, separators, fields), some random bytes."""
    if c.integer(0, 9) == 0:
        return c.binary(200)
    lines = c.pick(KMSG).decode().split("\n")
    for _ in range(c.integer(0, 6)):
        at = c.integer(0, len(lines) - 1)
        how = c.integer(0, 5)
        if how == 0:
            runs = list(DIGITS.finditer(lines[at]))
            if runs:
                run = c.pick(runs)
                lines[at] = lines[at][: run.start()] + c.number() + lines[at][run.end() :]
        elif how == 1:
            old = c.pick(_KMSG_SEPARATORS)
            lines[at] = lines[at].replace(old, c.pick(["", ",", ";", ":", "\n", "\x00", "  ", old * 2]), 1)
        elif how == 2:
            cut = c.integer(0, len(lines[at]))
            lines[at] = lines[at][:cut] + (c.pick(NASTY) if c.integer(0, 1) else c.text(10)) + lines[at][cut:]
        elif how == 3:
            lines[at] = lines[at][: c.integer(0, len(lines[at]))]
        elif how == 4:
            lines.insert(at, c.text(30))
        else:
            lines[at] = lines[at] + c.pick(KMSG).decode().split(";", 1)[-1]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


# -- the checks ------------------------------------------------------------------------------


def _one_line(error: Exception, source: str) -> None:
    message = str(error)
    if "\n" in message or "\r" in message or not message.startswith(f"{source}"):
        raise Bug(f"the documented error is not one line naming {source}: {message!r}")


def _int(value: Any, what: str) -> None:
    if type(value) is not int:
        raise Bug(f"{what}: {value!r} is not an int")


def _expect_input(run: Callable[[], Any], source: str, shape: Callable[[Any], None]) -> str:
    try:
        value = run()
    except InputError as error:
        _one_line(error, source)
        return ERROR
    shape(value)
    return PARSED


def _buddyinfo_shape(value: parse.BuddyInfo) -> None:
    if not value.zones or len({len(zone.free) for zone in value.zones}) != 1:
        raise Bug(f"zones of unequal or no orders: {value!r}")
    for zone in value.zones:
        _int(zone.node, "node")
        if zone.node < 0 or any(type(n) is not int or n < 0 for n in zone.free) or not zone.zone:
            raise Bug(f"bad zone {zone!r}")


def _zoneinfo_shape(value: Tuple[parse.ZoneInfo, ...]) -> None:
    if not value:
        raise Bug("no zones parsed")
    for zone in value:
        for field in ("node", "free", "min", "low", "high", "spanned", "present", "managed"):
            _int(getattr(zone, field), field)


def _counters_shape(value: Dict[str, int]) -> None:
    for key, count in value.items():
        if not isinstance(key, str):
            raise Bug(f"key {key!r}")
        _int(count, key)


def _pressure_shape(value: parse.Pressure) -> None:
    for line in (value.some, value.full):
        if line is None:
            continue
        if not all(isinstance(v, float) for v in (line.avg10, line.avg60, line.avg300)):
            raise Bug(f"{line!r}")
        _int(line.total, "total")


def _order_shape(value: int) -> None:
    _int(value, "page block order")


def check_buddyinfo(text: str) -> str:
    return _expect_input(lambda: parse.parse_buddyinfo(text), "/proc/buddyinfo", _buddyinfo_shape)


def check_zoneinfo(text: str) -> str:
    return _expect_input(lambda: parse.parse_zoneinfo(text), "/proc/zoneinfo", _zoneinfo_shape)


def check_vmstat(text: str) -> str:
    return _expect_input(lambda: parse.parse_vmstat(text), "/proc/vmstat", _counters_shape)


# What a poll picks from /proc/vmstat (policy.BASE_COUNTERS and the triggers' counters), and a few others.
PICKED_KEYS = tuple(
    dict.fromkeys(
        [key for name in (*policy.BASE_COUNTERS, *config.VMSTAT_COUNTERS) for key in counter_keys(name)]
        + ["nr_free_pages", "pgsteal_file", "workingset_refault_file", "compact_stall", "nr_dirty"]
    )
)


def check_vmstat_keys(case: Tuple[str, Tuple[str, ...]]) -> str:
    text, keys = case

    def shape(value: Dict[str, int]) -> None:
        _counters_shape(value)
        if not set(value) <= set(keys):
            raise Bug(f"keys not asked for: {sorted(set(value) - set(keys))}")

    return _expect_input(lambda: parse.parse_vmstat(text, "/proc/vmstat", keys), "/proc/vmstat", shape)


_KEY_NAME = "abcdefghijklmnopqrstuvwxyz_0123456789"


def vmstat_case(c: Chooser) -> Tuple[str, Tuple[str, ...]]:
    """/proc/vmstat's text and the keys to pick. The keys are shrinkd's own (counter names), never read
    from the input: names, not any text."""
    text = text_for("vmstat")(c)
    if c.integer(0, 1) == 0:
        keys: Tuple[str, ...] = PICKED_KEYS
    else:
        keys = tuple(
            c.pick(PICKED_KEYS) if c.integer(0, 1) else (c.text(20, _KEY_NAME) or "x") for _ in range(c.integer(0, 8))
        )
    if keys and c.integer(0, 3) == 0:
        # A picked key's own line broken: random mutations of a 300-line file seldom hit the few
        # lines the keys pick, which are the only ones the parser must refuse.
        key = c.pick(list(keys))
        lines = text.split("\n")
        hits = [i for i, line in enumerate(lines) if line.split(" ", 1)[0] == key]
        if hits:
            at = c.pick(hits)
            lines[at] = f"{key} {c.token()}"
            text = "\n".join(lines)
    return text, keys


def check_meminfo(text: str) -> str:
    return _expect_input(lambda: parse.parse_meminfo(text), "/proc/meminfo", _counters_shape)


def check_pressure(text: str) -> str:
    return _expect_input(lambda: parse.parse_pressure(text), "/proc/pressure/memory", _pressure_shape)


def check_pagetypeinfo(text: str) -> str:
    return _expect_input(lambda: parse.parse_pageblock_order(text), "/proc/pagetypeinfo", _order_shape)


def check_kmsg(data: bytes) -> str:
    """A /dev/kmsg record: parsed (and, when it reports one, the allocation failure read from it) or one InputError."""
    try:
        record = parse.parse_kmsg_record(data)
    except InputError as error:
        _one_line(error, "/dev/kmsg")
        return ERROR
    _int(record.seq, "seq")
    _int(record.ts_usec, "ts_usec")
    if not 0 <= record.level <= 7 or "\n" in record.message:
        raise Bug(f"record {record!r}")
    failure = parse.allocation_failure(record)
    if failure is not None:
        _int(failure.order, "order")
        if failure.zone not in ("DMA", "DMA32", "Normal", "HighMem", "Movable"):
            raise Bug(f"zone {failure.zone!r}")
    return PARSED


def check_uevent(data: bytes) -> str:
    """parse_uevent has no error to raise: a dict of str, or None for what is not a kernel uevent."""
    fields = udevwatch.parse_uevent(data)
    if fields is None:
        return ERROR
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items()):
        raise Bug(f"fields not text: {fields!r}")
    change = udevwatch.classify(fields, "shrinkmem")
    if change is not None and (len(change) != 3 or change[0] not in ("device", "memory")):
        raise Bug(f"classify: {change!r}")
    return PARSED


CONFIG_SOURCE = "fuzz.yaml"


def check_config(text: str) -> str:
    """The YAML reader, the schema and the runtime Config: a Config or one ConfigError line."""
    try:
        tree = configfile.parse_text(text, CONFIG_SOURCE)
        plain = configfile.validate(tree)
        built = config.from_plain(plain, [CONFIG_SOURCE])
    except ConfigError as error:
        _one_line(error, CONFIG_SOURCE)
        return ERROR
    if not isinstance(built, config.Config):
        raise Bug(f"not a Config: {built!r}")
    import marshal

    marshal.dumps(plain)  # what configload's reader process sends must be sendable
    return PARSED


def config_document(c: Chooser) -> str:
    """Mutated configuration files, and documents built from the schema's own keys with any values."""
    how = c.integer(0, 3)
    if how < 2:
        return mutated(c, "config")
    return schema_document(c) if how == 2 else c.text(200)


def _schema_keys(section: Any, depth: int = 0) -> Dict[str, Any]:
    """The key tree of configfile.SCHEMA: {key: subtree, or {} for a value}."""
    fields = getattr(section, "fields", None)
    if fields is None or depth > 4:
        return {}
    return {key: _schema_keys(check, depth + 1) for key, (check, _default) in fields.items()}


SCHEMA_KEYS = _schema_keys(configfile.SCHEMA)
RULE_KEYS = sorted(configfile._RULE.fields)


def schema_document(c: Chooser) -> str:
    import yaml

    def value_for(subtree: Dict[str, Any], key: str) -> Any:
        if key == "rules":
            rules = []
            for _ in range(c.integer(0, 3)):
                rule = {k: c.scalar() for k in c.some(RULE_KEYS, 5)}
                if c.integer(0, 1):
                    rule["orders"] = [c.scalar() for _ in range(c.integer(0, 3))]
                rules.append(rule)
            return rules
        if subtree and c.integer(0, 4) > 0:
            return {k: value_for(subtree[k], k) for k in c.some(sorted(subtree), len(subtree))}
        if c.integer(0, 5) == 0:
            return [c.scalar() for _ in range(c.integer(0, 3))]
        return c.scalar()

    document = {key: value_for(SCHEMA_KEYS[key], key) for key in c.some(sorted(SCHEMA_KEYS), len(SCHEMA_KEYS))}
    if c.integer(0, 1):
        document[c.text(8)] = c.scalar()
    return yaml.safe_dump(document, allow_unicode=True)


class Target:
    def __init__(self, name: str, generate: Callable[[Chooser], Any], check: Callable[[Any], str]) -> None:
        self.name = name
        self.generate = generate
        self.check = check

    @property
    def strategy(self) -> st.SearchStrategy[Any]:
        """The generator under Hypothesis: every choice a draw."""
        generate = self.generate

        @st.composite
        def drawn(draw: st.DrawFn) -> Any:
            return generate(Draws(draw))

        return drawn()


TARGETS = [
    Target("buddyinfo", text_for("buddyinfo"), check_buddyinfo),
    Target("zoneinfo", text_for("zoneinfo"), check_zoneinfo),
    Target("vmstat", text_for("vmstat"), check_vmstat),
    Target("vmstat-keys", vmstat_case, check_vmstat_keys),
    Target("pressure", text_for("pressure"), check_pressure),
    Target("meminfo", text_for("meminfo"), check_meminfo),
    Target("pagetypeinfo", text_for("pagetypeinfo"), check_pagetypeinfo),
    Target("uevent", uevent, check_uevent),
    Target("kmsg", kmsg_record, check_kmsg),
    Target("config", config_document, check_config),
]
BY_NAME = {target.name: target for target in TARGETS}
