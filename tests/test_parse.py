"""Parsers on small inline inputs: odd shapes kernels really print, and malformed ones."""

from __future__ import annotations

import pytest

from shrinkd.errors import InputError
from shrinkd.parse import parse_buddyinfo, parse_meminfo, parse_pressure, parse_vmstat, parse_zoneinfo


def _row(node: int, zone: str, counts: list[int]) -> str:
    return f"Node {node}, zone {zone:>8} " + " ".join(f"{c:6d}" for c in counts) + " \n"


@pytest.mark.parametrize("orders", [11, 12, 14])
def test_buddyinfo_any_number_of_orders(orders: int) -> None:
    text = _row(0, "DMA", list(range(orders))) + _row(0, "Normal", [1] * orders)
    info = parse_buddyinfo(text)
    assert info.orders == orders
    assert info.zones[0].free == tuple(range(orders))


def test_buddyinfo_any_zone_name_and_node() -> None:
    names = ["DMA", "DMA32", "Normal", "HighMem", "Movable", "Device"]
    text = "".join(_row(node, name, [node] * 11) for node in (0, 3) for name in names)
    info = parse_buddyinfo(text)
    assert [(z.node, z.zone) for z in info.zones] == [(n, name) for n in (0, 3) for name in names]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", None, "no zones"),
        ("Node 0, zone DMA 1 2 3\nNode 0, zone Normal 1 2\n", 2, "2 orders, earlier lines have 3"),
        ("Node 0, zone DMA 1 x 3\n", 1, "expected an integer, got 'x'"),
        ("Node 0, zone DMA\n", 1, "no free-block counts"),
        ("garbage here\n", 1, "expected 'Node N, zone NAME counts...'"),
        ("Node 0, zone DMA 1 -2 3\n", 1, "negative"),
        ("Node 0, zone DMA 1 2 3\nNode 0, zo", 2, "expected 'Node N"),
    ],
)
def test_buddyinfo_malformed(text: str, line: int | None, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_buddyinfo(text, "/x/buddyinfo")
    assert caught.value.line == line
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("/x/buddyinfo" + (f":{line}" if line else ""))
    assert "\n" not in str(caught.value)


ZONEINFO = """\
Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 10
      nr_free_pages 99
  pages free     3840
        boost    0
        min      39
        low      48
        high     57
        spanned  4095
        present  3998
        managed  3840
        cma      0
        protection: (0, 2713, 3911, 3911)
  pagesets
    cpu: 0
              count: 0
              high:  12
              batch: 1
  vm stats threshold: 4
  node_unreclaimable:  0
  start_pfn:           1
Node 0, zone  Movable
  pages free     0
        boost    0
        min      0
        low      0
        high     0
        promo    0
        spanned  0
        present  0
        managed  0
        cma      0
        protection: (0, 0, 0, 0)
"""


def test_zoneinfo_reads_watermarks_not_pageset_high() -> None:
    dma, movable = parse_zoneinfo(ZONEINFO)
    assert (dma.node, dma.zone, dma.free, dma.min, dma.low, dma.high) == (0, "DMA", 3840, 39, 48, 57)
    assert (dma.spanned, dma.present, dma.managed) == (4095, 3998, 3840)
    assert (movable.zone, movable.present, movable.high) == ("Movable", 0, 0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no zones"),
        ("  pages free 3\n", "expected 'Node N, zone NAME'"),
        (ZONEINFO.replace("        low      48\n", ""), "zone DMA: no low"),
        (ZONEINFO.replace("min      39", "min      3x9"), "zone DMA min: expected an integer"),
        (ZONEINFO[: ZONEINFO.index("        high     57")], "no high, spanned, present, managed"),
    ],
)
def test_zoneinfo_malformed(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_zoneinfo(text, "/p/zoneinfo")


def test_vmstat_keeps_unknown_keys_and_rejects_junk() -> None:
    values = parse_vmstat("nr_free_pages 12\ncompact_stall 3\nsome_future_counter 7\n")
    assert values == {"nr_free_pages": 12, "compact_stall": 3, "some_future_counter": 7}
    with pytest.raises(InputError, match=r"/proc/vmstat:2: compact_stall: expected an integer"):
        parse_vmstat("nr_free_pages 12\ncompact_stall many\n")
    with pytest.raises(InputError, match=r":1: expected 'key value'"):
        parse_vmstat("nr_free_pages\n")
    with pytest.raises(InputError, match="empty file"):
        parse_vmstat("\n")


def test_meminfo_units() -> None:
    values = parse_meminfo("MemTotal:        1000 kB\nHugePages_Total:       0\nHugepagesize:    2048 kB\n")
    assert values == {"MemTotal": 1000, "HugePages_Total": 0, "Hugepagesize": 2048}
    with pytest.raises(InputError, match=":1: expected 'Key: value"):
        parse_meminfo("MemTotal 1000 kB\n")


def test_pressure_full_line_optional_and_unknown_lines_ignored() -> None:
    text = "some avg10=1.50 avg60=0.20 avg300=0.00 total=1234\nnewkind avg10=9.99\n"
    pressure = parse_pressure(text)
    assert pressure.some.avg10 == 1.5 and pressure.some.total == 1234
    assert pressure.full is None
    both = parse_pressure(text + "full avg10=0.10 avg60=0.00 avg300=0.00 total=99\n")
    assert both.full is not None and both.full.total == 99


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", "no 'some' line"),
        ("some avg10=0.00 avg60=0.00 total=0\n", ":1: some: no avg300="),
        ("some avg10=x avg60=0.00 avg300=0.00 total=0\n", "not a number"),
        ("some avg10 0.00\n", "expected key=value"),
    ],
)
def test_pressure_malformed(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_pressure(text)
