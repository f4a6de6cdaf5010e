"""The trace: written by the daemon without json, read back exactly; bounded; damaged or foreign files refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from shrinkd import trace
from shrinkd.parse import AllocationFailure
from shrinkd.procfs import ProcFS, Reader
from shrinkd.trace import TraceError, TraceWriter, read_trace
from shrinkd.view import Observation, observe

from .fakekernel import STATES, Clock

STATE_NAMES = ["6.1-idle", "6.1-frag1", "6.1-frag3", "6.1-hog", "6.1-numa-frag2", "6.12-hog"]


def observation(state: str) -> Observation:
    with Reader(ProcFS(STATES / state / "proc")) as reader:
        return observe(reader.snapshot())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "trace"
    path.mkdir()
    os.chmod(path, 0o755)
    return path


def writer(folder: Path, clock: Clock, max_size: int = 16 << 20) -> TraceWriter:
    return TraceWriter(str(folder / "t.jsonl"), max_size, 60.0, 4096, {"huge": 9, "pageblock": 9, "costly": 3}, clock, lambda: 1.7e9 + clock.now)


def test_polls_and_events_read_back_as_the_policy_saw_them(folder: Path) -> None:
    clock = Clock()
    out = writer(folder, clock)
    seen: List[Observation] = []
    out.event(clock.now, "started", "started: backends compact", {"backends": "compact,memory_reclaim", "dry_run": True})
    for state in STATE_NAMES:
        clock.now += 10.25
        obs = observation(state)
        if state == "6.1-hog":  # the kernel logged allocation failures before this poll
            obs = obs.replace(failures=(
                AllocationFailure(9, "0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP)", "Normal", "hog", 123456789),
                AllocationFailure(3, 'odd "mode"\n', "DMA32", "kworker/0:1", 123456999),
            ))
        seen.append(obs)
        out.poll(clock.now, obs)
    out.event(clock.now, "reclaimed", 'reclaimed 3 pages "quoted"\nnewline', {"pages_reclaimed": 3, "partial": False, "tried": None})
    out.write()
    read = read_trace([str(folder / "t.jsonl")])
    assert [poll.obs for poll in read.polls] == seen  # every zone, count, watermark, counter and PSI value
    assert [poll.t for poll in read.polls] == [1010.25 + 10.25 * n for n in range(len(seen))]
    assert [(e.kind, e.message, e.fields) for e in read.events] == [
        ("started", "started: backends compact", {"backends": "compact,memory_reclaim", "dry_run": True}),
        ("reclaimed", 'reclaimed 3 pages "quoted"\nnewline', {"pages_reclaimed": 3, "partial": False}),
    ]
    assert read.page_size == 4096 and read.orders == {"huge": 9, "pageblock": 9, "costly": 3}
    assert read.wall(read.polls[0].t) == pytest.approx(1.7e9 + 1010.25)


def test_the_writer_imports_no_json(folder: Path) -> None:
    """The daemon composes the lines itself: json (and the re it imports) stays out of it."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from shrinkd.trace import TraceWriter\n"
        "from shrinkd.prom import Textfile\n"
        "from shrinkd.outputs import Outputs\n"
        "print(' '.join(m for m in ('json', 're', 'dataclasses', 'typing') if m in set(sys.modules) - before))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_a_full_file_becomes_a_numbered_one_and_the_total_stays_bounded(folder: Path) -> None:
    clock = Clock()
    out = writer(folder, clock, max_size=64 << 10)  # 16K files
    obs = observation("6.1-numa-frag2")
    for _ in range(120):
        for _ in range(10):
            clock.now += 1
            out.poll(clock.now, obs)
        out.write()
    names = sorted(p.name for p in folder.iterdir())
    assert "t.jsonl" in names and "t.jsonl.1" not in names  # the oldest went
    sealed = sorted((p for p in folder.iterdir() if p.name != "t.jsonl"), key=lambda p: int(p.suffix[1:]))
    assert len(sealed) >= 2
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total <= 64 << 10
    assert all(p.stat().st_size <= 16 << 10 for p in folder.iterdir())
    # Each file replays alone (its own header and layout); consecutive ones replay together, in any order given.
    for path in sealed:
        assert read_trace([str(path)]).polls
    together = read_trace([str(folder / "t.jsonl"), *(str(p) for p in reversed(sealed))])
    times = [poll.t for poll in together.polls]
    assert times == sorted(times) and len(times) == len(set(times))
    assert times[-1] == clock.now


def test_a_file_left_by_an_earlier_run_is_kept_as_a_segment(folder: Path) -> None:
    clock = Clock()
    first = writer(folder, clock)
    first.poll(clock.now, observation("6.1-idle"))
    first.write()
    second = writer(folder, clock)
    second.poll(clock.now + 1, observation("6.1-hog"))
    second.write()
    assert sorted(p.name for p in folder.iterdir()) == ["t.jsonl", "t.jsonl.1"]
    with pytest.raises(TraceError, match=r"from another recording than .*: replay them separately$"):
        read_trace([str(folder / "t.jsonl"), str(folder / "t.jsonl.1")])


def test_lines_wait_in_memory_while_the_directory_is_unusable(folder: Path) -> None:
    from shrinkd.safefile import OutputError

    clock = Clock()
    out = writer(folder, clock)
    os.chmod(folder, 0o777)
    out.poll(clock.now, observation("6.1-idle"))
    with pytest.raises(OutputError, match="writable by group or others"):
        out.write()
    os.chmod(folder, 0o755)
    out.poll(clock.now + 1, observation("6.1-hog"))
    out.write()
    assert len(read_trace([str(folder / "t.jsonl")]).polls) == 2  # nothing lost


# -- damaged and foreign files: one line naming the file and the line --------------------


def recorded(folder: Path) -> Path:
    clock = Clock()
    out = writer(folder, clock)
    for state in STATE_NAMES[:3]:
        clock.now += 10
        out.poll(clock.now, observation(state))
    out.write()
    return folder / "t.jsonl"


def test_a_truncated_trace_is_one_line(folder: Path) -> None:
    path = recorded(folder)
    data = path.read_bytes()
    cut = folder / "cut.jsonl"
    cut.write_bytes(data[: len(data) - 40])
    with pytest.raises(TraceError) as caught:
        read_trace([str(cut)])
    lines = data[: len(data) - 40].count(b"\n") + 1
    assert str(caught.value) == f"{cut}:{lines}: truncated: the last line is incomplete (the file was cut short)"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file: not a shrinkd trace"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\n", "1: not UTF-8 text: not a shrinkd trace"),
        (b'{"some": "json"}\n', "1: not a shrinkd trace (no 'shrinkd-trace' header on the first line)"),
        (b"Node 0, zone DMA 1 2 3\n", "1: not a shrinkd trace (no 'shrinkd-trace' header on the first line)"),
        (b'{"format": "shrinkd-trace", "version": 99}\n', "1: trace format version 99; this shrinkd reads version 1"),
        (b'{"format": "shrinkd-trace", "version": 1}\n', "1: header: recording missing or not a str"),
    ],
    ids=["empty", "binary", "other-json", "buddyinfo", "version", "header"],
)
def test_a_foreign_file_is_one_line(folder: Path, content: bytes, expected: str) -> None:
    path = folder / "foreign"
    path.write_bytes(content)
    with pytest.raises(TraceError) as caught:
        read_trace([str(path)])
    assert str(caught.value) == f"{path}:{expected}" if expected[0].isdigit() else f"{path}: {expected}"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"t": 1, "free": [[1, 2]], "pages": [3]}', "1 zones in a poll, 2 in the layout"),
        ('{"t": 1, "free": [[1, -2], [0]], "pages": [3, 4]}', "free blocks and pages must be counts"),
        ('{"what": 1}', "neither zones, a poll nor an event"),
        ("[1, 2]", "not a trace record"),
        ('{"t": 1, "free"', "not JSON"),
    ],
)
def test_a_damaged_record_names_its_line(folder: Path, line: str, expected: str) -> None:
    path = recorded(folder)
    lines = path.read_text().splitlines()
    lines.insert(3, line)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError, match=rf"^{path}:4: .*{expected}"):
        read_trace([str(path)])


def test_segments_that_do_not_follow_are_refused(folder: Path) -> None:
    path = recorded(folder)
    header = json.loads(path.read_text().splitlines()[0])
    later = folder / "later"
    header["segment"] = 2
    later.write_text(json.dumps(header) + "\n" + "\n".join(path.read_text().splitlines()[1:]) + "\n")
    with pytest.raises(TraceError, match=r"segment 2 does not follow .* \(segment 0\)$"):
        read_trace([str(path), str(later)])


def test_a_header_alone_has_no_polls(folder: Path) -> None:
    path = recorded(folder)
    alone = folder / "alone"
    alone.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(TraceError, match=r"no polls in the trace$"):
        read_trace([str(alone)])


def test_layout_lines_are_written_only_when_zones_change(folder: Path) -> None:
    path = recorded(folder)
    kinds = [next(iter(json.loads(line))) for line in path.read_text().splitlines()]
    # frag1 and frag3 were captured in one boot: same zones, same sizes and watermarks; idle too.
    assert kinds.count("zones") == 1
    assert trace.VERSION == 1


def test_a_file_removed_or_changed_meanwhile_starts_a_new_one(folder: Path) -> None:
    clock = Clock()
    out = writer(folder, clock)
    out.poll(clock.now, observation("6.1-idle"))
    out.write()
    (folder / "t.jsonl").unlink()
    out.poll(clock.now + 1, observation("6.1-hog"))
    out.write()
    alone = read_trace([str(folder / "t.jsonl")])
    assert len(alone.polls) == 1 and alone.header["segment"] == 1
    with open(folder / "t.jsonl", "a") as handle:
        handle.write("something else\n")
    out.poll(clock.now + 2, observation("6.1-idle"))
    out.write()
    assert read_trace([str(folder / "t.jsonl")]).header["segment"] == 2
    assert (folder / "t.jsonl.1").read_text().endswith("something else\n")  # kept aside, not lost
