"""The policy, pure: tables of observations stepped through an injected clock.

Observations are built from /proc text with the project's own parsers; every
expected number here is worked out by hand in a comment beside it.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import pytest

from shrinkd import parse
from shrinkd.conditions import ExtfragIndex, GlobalCondition, UnusableIndex, Watermark, ZoneCondition, counter
from shrinkd.events import notice_text
from shrinkd.parse import Snapshot
from shrinkd.policy import COMPACT, RECLAIM, SKIP, Decision, Plan, Policy, Step
from shrinkd.view import Observation, observe

from .configs import current

PAGE = 4096
ORDERS = 11

# Free blocks per order (0..10) in one zone, and the unusable index at order 9 of each,
# worked out with (free - suitable * 512) * 1000 // free:
FRAGMENTED = [1000] + [0] * 10  # free 1000, nothing of order >= 9: 1000 (1.000)
BETWEEN = [1000] + [0] * 8 + [1, 0]  # free 1512, suitable 512: 1000 * 1000 // 1512 = 661
BELOW_CLEAR = [1000] + [0] * 8 + [2, 0]  # free 2024, suitable 1024: 1000 * 1000 // 2024 = 494
HEALTHY = [0] * 10 + [10]  # all free memory in order-10 blocks: 0


def buddy_line(node: int, zone: str, free: Sequence[int]) -> str:
    return f"Node {node}, zone {zone:>8} " + " ".join(f"{n:6d}" for n in free)


def zoneinfo_block(node: int, zone: str, free: int, marks: Tuple[int, int, int], managed: int) -> str:
    low, mid, high = marks
    return (
        f"Node {node}, zone {zone:>8}\n  pages free     {free}\n        min      {low}\n        low      {mid}\n"
        f"        high     {high}\n        spanned  {managed}\n        present  {managed}\n        managed  {managed}\n"
    )


def observation(
    zones: Mapping[Tuple[int, str], Sequence[int]],
    *,
    marks: Tuple[int, int, int] = (100, 125, 150),
    managed: int = 262144,
    vmstat: Optional[Dict[str, int]] = None,
    psi_some: float = 0.0,
    free_override: Optional[Dict[Tuple[int, str], int]] = None,
) -> Observation:
    buddy = "\n".join(buddy_line(node, zone, free) for (node, zone), free in zones.items())
    info = "".join(
        zoneinfo_block(
            node, zone, (free_override or {}).get((node, zone), sum(n << o for o, n in enumerate(free))), marks, managed
        )
        for (node, zone), free in zones.items()
    )
    pressure = (
        f"some avg10={psi_some:.2f} avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    vm = "".join(f"{k} {v}\n" for k, v in (vmstat or {"nr_free_pages": 1}).items())
    return observe(
        Snapshot(
            buddyinfo=parse.parse_buddyinfo(buddy),
            zoneinfo=parse.parse_zoneinfo(info),
            vmstat=parse.parse_vmstat(vm),
            meminfo=None,
            pressure=parse.parse_pressure(pressure),
        )
    )


def normal(free: Sequence[int], **kwargs: object) -> Observation:
    return observation({(0, "Normal"): free}, **kwargs)  # type: ignore[arg-type]


# The rule alone: the built-in allocation_failures trigger is off in these tables, and the
# slowest poll is 10 s (the intervals below are worked out for it).
RULE = """
triggers:
  allocation_failures: null
poll:
  max_interval: 10
rules:
  - name: huge
    zones: [Normal]
    orders: [9]
    unusable_index: {{trigger: 0.9, clear: 0.6}}
    sustain: {sustain}
    reclaim: {reclaim}
guards:
  cooldown: 60
reclaim:
  min: {min}
  max_per_event: {max_event}
  max_per_hour: {max_hour}
"""


def policy(
    sustain: int = 1,
    reclaim: bool = True,
    min: str = "4M",
    max_event: str = "64M",
    max_hour: str = "256M",
    once: bool = False,
) -> Policy:
    text = RULE.format(sustain=sustain, reclaim=str(reclaim).lower(), min=min, max_event=max_event, max_hour=max_hour)
    return Policy(current(text), PAGE, once=once)


def kinds(plan: Plan) -> List[str]:
    return [notice.kind for notice in plan.notices]


BOTH = frozenset({COMPACT, RECLAIM})


# -- sustain and hysteresis -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        # sustain 3: two polls over, one under (the count restarts), then three over.
        (
            [FRAGMENTED, FRAGMENTED, HEALTHY, FRAGMENTED, FRAGMENTED, FRAGMENTED],
            [[], [], [], [], [], ["triggered"]],
        ),
        # Holding between the levels keeps it; only the clear level ends it.
        (
            [FRAGMENTED, FRAGMENTED, FRAGMENTED, BETWEEN, BETWEEN, BELOW_CLEAR, BETWEEN],
            [[], [], ["triggered"], [], [], ["cleared"], []],
        ),
    ],
    ids=["sustain", "hysteresis"],
)
def test_sustain_and_hysteresis(sequence: List[List[int]], expected: List[List[str]]) -> None:
    p = policy(sustain=3)
    got = [kinds(p.evaluate(normal(free), now=10.0 * step)) for step, free in enumerate(sequence)]
    assert got == expected


def test_a_holding_condition_is_a_decision_until_it_clears() -> None:
    p = policy(sustain=1)
    plan = p.evaluate(normal(FRAGMENTED), 0.0)
    assert [(d.source.name, d.value) for d in plan.decisions] == [("huge:unusable_index", 1000)]
    source = plan.decisions[0].source
    assert isinstance(source, ZoneCondition) and (source.node, source.zone, source.order) == (0, "Normal", 9)
    # Between trigger and clear: still holds (no action taken, so no cooldown).
    assert [d.value for d in p.evaluate(normal(BETWEEN), 1.0).decisions] == [661]
    assert p.evaluate(normal(BELOW_CLEAR), 2.0).decisions == ()


def test_once_needs_no_sustain() -> None:
    p = policy(sustain=5, once=True)
    plan = p.evaluate(normal(FRAGMENTED), 0.0)
    assert kinds(plan) == ["triggered"] and len(plan.decisions) == 1


# -- cooldown ------------------------------------------------------------------------


def test_cooldown_per_zone() -> None:
    p = policy()
    two = {(0, "Normal"): FRAGMENTED, (1, "Normal"): FRAGMENTED}
    plan = p.evaluate(observation(two), 0.0)
    assert len(plan.decisions) == 2
    p.acted(plan.decisions[0], 0.0, judge=False)  # node 0 acted on (nothing to judge: the cooldown alone); node 1 not
    at = [
        (
            now,
            sorted(
                d.source.zone_node
                for d in p.evaluate(observation(two), now).decisions
                if isinstance(d.source, ZoneCondition)
            ),
        )
        for now in (1.0, 59.9, 60.0)
    ]
    assert at == [(1.0, [1]), (59.9, [1]), (60.0, [0, 1])]


# -- the ladder -------------------------------------------------------------------------


def ladder(p: Policy, decision: Decision, states: List[Observation], available: frozenset[str] = BOTH) -> List[Step]:
    """Walk next_step with a new observation after each step, as the daemon does."""
    done: List[Step] = []
    for obs in states:
        step = p.next_step(decision, obs, done, available, 100.0)
        if step is None:
            break
        done.append(step)
    return done


def first_decision(p: Policy, obs: Observation) -> Decision:
    plan = p.evaluate(obs, 0.0)
    assert len(plan.decisions) == 1
    return plan.decisions[0]


def test_ladder_compacts_first_and_reclaims_only_what_compaction_left() -> None:
    p = policy(min="64K")
    decision = first_decision(p, normal(FRAGMENTED))
    # Compaction does not help: reclaim follows, sized from the state measured after compaction.
    # BETWEEN: F = 1512, S = 512, clear 0.6: R = ceil(1000 * 1000 / 600) - 1512 = 1667 - 1512 = 155 pages.
    steps = ladder(p, decision, [normal(FRAGMENTED), normal(BETWEEN), normal(BELOW_CLEAR)])
    assert steps == [Step(COMPACT, node=0), Step(RECLAIM, node=0, size=155 * PAGE, after_compaction=True)]


def test_after_reclaim_a_second_compaction_and_no_more() -> None:
    p = policy(min="64K")
    decision = first_decision(p, normal(FRAGMENTED))
    # Nothing helps: compact, reclaim (FRAGMENTED: F = 1000, S = 0, clear 0.6:
    # ceil(1000 * 1000 / 600) - 1000 = 667 pages), compact again, then stop.
    steps = ladder(p, decision, [normal(FRAGMENTED)] * 5)
    assert steps == [Step(COMPACT, node=0), Step(RECLAIM, node=0, size=667 * PAGE, after_compaction=True), Step(COMPACT, node=0)]


def test_ladder_stops_when_compaction_reached_the_clear_level() -> None:
    p = policy()
    decision = first_decision(p, normal(FRAGMENTED))
    assert ladder(p, decision, [normal(FRAGMENTED), normal(BELOW_CLEAR)]) == [Step(COMPACT, node=0)]


def test_a_rule_without_reclaim_stops_after_compaction() -> None:
    p = policy(reclaim=False)
    decision = first_decision(p, normal(FRAGMENTED))
    assert ladder(p, decision, [normal(FRAGMENTED), normal(FRAGMENTED)]) == [Step(COMPACT, node=0)]


def test_measured_again_before_acting_a_recovered_zone_is_skipped() -> None:
    p = policy()
    decision = first_decision(p, normal(FRAGMENTED))
    steps = ladder(p, decision, [normal(BELOW_CLEAR)])
    assert [s.action for s in steps] == [SKIP]
    assert steps[0].reason == "recovered before acting (0.494)"


def test_without_compaction_the_ladder_starts_at_reclaim() -> None:
    p = policy(min="4M")
    decision = first_decision(p, normal(FRAGMENTED))
    # FRAGMENTED: F = 1000, S = 0: R = ceil(1000 * 1000 / 600) - 1000 = 667 pages, under the 4M minimum.
    steps = ladder(p, decision, [normal(FRAGMENTED), normal(BELOW_CLEAR)], frozenset({RECLAIM}))
    assert steps == [Step(RECLAIM, node=0, size=4 << 20)]


def test_no_backend_at_all_is_a_skip_with_the_reason() -> None:
    p = policy()
    decision = first_decision(p, normal(FRAGMENTED))
    steps = ladder(p, decision, [normal(FRAGMENTED), normal(FRAGMENTED)], frozenset({COMPACT}))
    assert [(s.action, s.reason) for s in steps] == [(COMPACT, ""), (SKIP, "no reclaim backend available")]


def test_reclaim_size_is_bounded_per_event() -> None:
    p = policy(min="4K", max_event="128K")
    decision = first_decision(p, normal(FRAGMENTED))
    steps = ladder(p, decision, [normal(FRAGMENTED), normal(FRAGMENTED)])
    # 667 pages wanted (2.6 MiB), 128K allowed.
    assert steps[-1] == Step(RECLAIM, node=0, size=128 << 10, after_compaction=True)


def test_deficit_for_each_condition_kind() -> None:
    text = """
rules:
  - name: u
    zones: [Normal]
    orders: [9]
    unusable_index: {trigger: 0.9, clear: 0.5}
  - name: e
    zones: [Normal]
    orders: [4]
    extfrag_index: {trigger: 0.5, clear: 0.3}
  - name: w
    zones: [Normal]
    orders: [0]
    watermark: {below: low, clear: high}
"""
    p = Policy(current(text), PAGE)
    obs = normal(BETWEEN, free_override={(0, "Normal"): 100}, marks=(80, 120, 160))
    rules = {rule.name: rule for rule in p.config.rules}
    deficits = {
        name: kind(rules[name], 0, "Normal", order).deficit_pages(obs)
        for name, order, kind in (("u", 9, UnusableIndex), ("e", 4, ExtfragIndex), ("w", 0, Watermark))
    }
    # u: F = 1512, S = 512, clear 0.5: 1000 * 1000 / 500 - 1512 = 488; e: one order-4 block, 16 pages;
    # w: high mark 160 - free 100 = 60.
    assert deficits == {"u": 488, "e": 16, "w": 60}


def test_a_watermark_condition_goes_straight_to_reclaim() -> None:
    text = "rules:\n  - {name: w, zones: [Normal], orders: [0], watermark: {below: low, clear: high}}\nreclaim: {min: 4K}\n"
    p = Policy(current(text), PAGE)
    low = normal(HEALTHY, free_override={(0, "Normal"): 100}, marks=(80, 120, 160))
    plan = p.evaluate(low, 0.0)
    assert kinds(plan) == ["triggered"]
    steps = ladder(
        p, plan.decisions[0], [low, normal(HEALTHY, free_override={(0, "Normal"): 170}, marks=(80, 120, 160))]
    )
    assert steps == [Step(RECLAIM, node=0, size=60 * PAGE)]


# -- per-hour cap -------------------------------------------------------------------------


def test_hourly_cap() -> None:
    p = policy(min="4M", max_event="8M", max_hour="12M")
    decision = first_decision(p, normal(FRAGMENTED))
    frag = normal(FRAGMENTED)

    def reclaim_step(now: float) -> Step:
        step = p.next_step(decision, frag, [Step(COMPACT, node=0)], BOTH, now)
        assert step is not None
        return step

    first = reclaim_step(0.0)
    assert first == Step(RECLAIM, node=0, size=4 << 20, after_compaction=True)  # 667 pages wanted: the 4M minimum
    p.reclaimed(8 << 20, frag, 0.0)
    assert reclaim_step(10.0) == Step(RECLAIM, node=0, size=4 << 20, after_compaction=True)  # 4M of 12M left
    p.reclaimed(4 << 20, frag, 10.0)
    capped = reclaim_step(20.0)
    assert (capped.action, capped.reason) == (SKIP, f"hourly reclaim cap reached ({12 << 20} of {12 << 20} bytes)")
    # An hour after the first reclaim, its 8M no longer count.
    assert reclaim_step(3600.5) == Step(RECLAIM, node=0, size=4 << 20, after_compaction=True)


def test_dry_run_reclaims_count_toward_the_cap_but_not_the_thrash_guard() -> None:
    p = policy()
    p.reclaimed(4 << 20, normal(FRAGMENTED), 0.0, watch=False)
    assert p.reclaimed_last_hour(1.0) == 4 << 20
    assert p.thrash.watch_until is None


# -- thrash guard -------------------------------------------------------------------------


def refaults(total: int, psi: float = 0.0) -> Observation:
    return normal(
        FRAGMENTED,
        vmstat={"workingset_refault_anon": total // 2, "workingset_refault_file": total - total // 2},
        psi_some=psi,
    )


def test_thrash_guard_suspends_reclaim_when_refaults_climb_and_backs_off_longer_each_time() -> None:
    p = policy()  # thrash: watch 60, factor 2, min 100/s, backoff 300 doubling up to 3600
    after_compaction = [Step(COMPACT, node=0)]
    p.evaluate(refaults(0), 0.0)
    (decision,) = p.evaluate(refaults(500), 10.0).decisions  # 500 refaults in 10 s: 50/s
    p.reclaimed(4 << 20, refaults(500), 10.0)
    assert p.thrash.refault_rate == 50.0
    plan = p.evaluate(refaults(3000), 20.0)  # 2500 in 10 s: 250/s, over 100/s and over 2 x 50/s
    assert kinds(plan) == ["thrash"]
    assert plan.notices[0].message == "thrash guard: refaults 250/s (before reclaim 50/s); reclaim suspended for 300 s"
    assert dict(plan.notices[0].fields)["BACKOFF_S"] == "300"
    step = p.next_step(decision, refaults(3000), after_compaction, BOTH, 21.0)
    assert step is not None and (step.action, step.reason) == (
        SKIP,
        "reclaim suspended by the thrash guard for 299 s more",
    )
    # After the back-off, reclaim again; thrashing again suspends it twice as long.
    step = p.next_step(decision, refaults(3000), after_compaction, BOTH, 320.5)
    assert step is not None and step.action == RECLAIM
    p.evaluate(refaults(3000), 321.0)  # no refaults since the last poll: 0/s
    p.reclaimed(4 << 20, refaults(3000), 321.0)
    again = p.evaluate(refaults(6000), 331.0)  # 300/s
    assert kinds(again) == ["thrash"] and dict(again.notices[0].fields)["BACKOFF_S"] == "600"


def test_a_clean_watch_resets_the_back_off() -> None:
    p = policy()
    p.thrash.backoff = 1200.0  # after earlier back-offs
    p.evaluate(refaults(0), 0.0)
    p.reclaimed(4 << 20, refaults(0), 0.0)
    assert kinds(p.evaluate(refaults(10), 30.0)) == []  # a trickle: no climb
    assert kinds(p.evaluate(refaults(20), 61.0)) == []  # the watch is over
    assert p.thrash.backoff == 300.0 and p.thrash.watch_until is None


def test_thrash_guard_on_pressure() -> None:
    p = policy()
    p.evaluate(refaults(0, psi=2.0), 0.0)
    p.reclaimed(4 << 20, refaults(0, psi=2.0), 0.0)
    assert kinds(p.evaluate(refaults(0, psi=9.0), 10.0)) == []  # under psi_some_avg10 (10)
    plan = p.evaluate(refaults(0, psi=12.5), 20.0)
    assert kinds(plan) == ["thrash"]
    assert "PSI some avg10 12.50% (before reclaim 2.00%)" in plan.notices[0].message


# -- adaptive polling ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free", "expected"),
    [
        # unusable 0: closeness 0 <= approach 0.75: max_interval.
        (HEALTHY, 10.0),
        # unusable 0.494 of trigger 0.9: closeness 0.549 <= 0.75: max.
        (BELOW_CLEAR, 10.0),
        # unusable 0.661 of 0.9: closeness 0.734, still under 0.75: max.
        (BETWEEN, 10.0),
        # free 1500 at order 0 and one order-9 block: 1500 * 1000 // 2012 = 745; 0.745 / 0.9 = 0.8278;
        # share (0.8278 - 0.75) / 0.25 = 0.3111; 10 - 9 * 0.3111 = 7.2.
        ([1500] + [0] * 8 + [1, 0], 7.2),
    ],
)
def test_interval_shrinks_as_a_value_approaches_its_trigger(free: List[int], expected: float) -> None:
    p = policy(sustain=5)
    assert p.evaluate(normal(free), 0.0).interval == pytest.approx(expected, abs=0.01)


def test_interval_is_minimal_while_a_condition_is_pending_or_holds() -> None:
    p = policy(sustain=3)
    assert p.evaluate(normal(FRAGMENTED), 0.0).interval == 1.0  # pending: 1 of 3 polls
    p.evaluate(normal(FRAGMENTED), 1.0)
    p.evaluate(normal(FRAGMENTED), 2.0)
    assert p.evaluate(normal(BETWEEN), 3.0).interval == 1.0  # holds between the levels
    assert p.evaluate(normal(BELOW_CLEAR), 4.0).interval == 10.0


# -- zones, orders and global triggers -------------------------------------------------------


def test_small_zones_and_unknown_orders() -> None:
    text = "rules:\n  - {name: r, zones: ['*'], orders: [9, 12], unusable_index: {trigger: 0.9, clear: 0.5}, min_zone_size: 64M}\n"
    p = Policy(current(text), PAGE)
    small = observation({(0, "DMA"): FRAGMENTED}, managed=4096)  # 16 MiB
    assert p.evaluate(small, 0.0).decisions == ()
    big = observation({(0, "DMA32"): FRAGMENTED})
    first = p.evaluate(big, 1.0)
    assert [n.message for n in first.notices if n.kind == "warning"] == [
        "rule r: order 12 is beyond this kernel's 11 orders; skipped"
    ]
    assert [d.source.where() for d in first.decisions] == ["node 0 zone DMA32 order 9"]
    assert [n.kind for n in p.evaluate(big, 2.0).notices if n.kind == "warning"] == []  # said once


def test_one_decision_per_zone_the_nearest_to_its_trigger() -> None:
    text = """
rules:
  - {name: a, zones: [Normal], orders: [9], unusable_index: {trigger: 0.5, clear: 0.2}}
  - {name: b, zones: [Normal], orders: [9], unusable_index: {trigger: 0.9, clear: 0.2}}
"""
    p = Policy(current(text), PAGE)
    plan = p.evaluate(normal(FRAGMENTED), 0.0)
    # Both hold; a is at twice its trigger level (1.0 / 0.5), b at 1.11 times.
    assert [d.source.name for d in plan.decisions] == ["a:unusable_index"]
    assert kinds(plan) == ["triggered", "triggered"]


def test_one_decision_per_zone_one_that_may_reclaim_before_one_that_only_compacts() -> None:
    # As a prediction (compaction only) and an unusable index that compaction cannot fix: the
    # compaction-only condition is nearer its trigger, but the one that may reclaim is chosen (its
    # ladder compacts first as well).
    text = """
rules:
  - {name: a, zones: [Normal], orders: [9], unusable_index: {trigger: 0.5, clear: 0.2}, reclaim: false}
  - {name: b, zones: [Normal], orders: [9], unusable_index: {trigger: 0.9, clear: 0.2}}
"""
    p = Policy(current(text), PAGE)
    plan = p.evaluate(normal(FRAGMENTED), 0.0)
    assert [d.source.name for d in plan.decisions] == ["b:unusable_index"]


def test_rate_trigger_compacts_all_nodes_and_never_reclaims() -> None:
    # The rate trigger alone: compact_stall's growth is not also told as an allocation failure here.
    text = (
        "triggers:\n  allocation_failures: null\n  vmstat:\n    - {counter: compact_stall, rate: 5, clear: 1, sustain: 1}\n"
        "rules: []\nfailures: {counters: []}\n"
    )
    p = Policy(current(text), PAGE)
    assert p.evaluate(normal(HEALTHY, vmstat={"compact_stall": 1000}), 0.0).decisions == ()
    plan = p.evaluate(normal(HEALTHY, vmstat={"compact_stall": 1100}), 10.0)  # 100 in 10 s: 10/s
    assert kinds(plan) == ["triggered"]
    (decision,) = plan.decisions
    assert isinstance(decision.source, GlobalCondition) and decision.value == 10.0
    obs = normal(HEALTHY, vmstat={"compact_stall": 1100})
    assert ladder(p, decision, [obs, obs, obs]) == [Step(COMPACT, node=None)]
    # shrinkd's own work is not counted: after rebase the rate starts again.
    p.acted(decision, 10.0)
    p.rebase(normal(HEALTHY, vmstat={"compact_stall": 1500}), 11.0)
    plan = p.evaluate(normal(HEALTHY, vmstat={"compact_stall": 1505}), 21.0)  # 0.5/s
    assert kinds(plan) == ["cleared"]


def test_allocstall_is_the_sum_of_the_kernel_split_counters() -> None:
    assert (
        counter(
            {"allocstall_dma": 1, "allocstall_dma32": 2, "allocstall_normal": 4, "allocstall_movable": 8}, "allocstall"
        )
        == 15
    )
    assert counter({"allocstall": 7}, "allocstall") == 7  # kernels before 4.8
    assert counter({"workingset_refault_anon": 3, "workingset_refault_file": 4}, "workingset_refault") == 7
    assert counter({"pgfault": 1}, "allocstall") is None


def test_psi_trigger() -> None:
    text = "triggers:\n  psi: {kind: some, avg10: 20, clear: 5, sustain: 2}\nrules: []\n"
    p = Policy(current(text), PAGE)
    seq = [(25.0, []), (30.0, ["triggered"]), (10.0, []), (4.0, ["cleared"])]
    got = [(psi, kinds(p.evaluate(normal(HEALTHY, psi_some=psi), float(i)))) for i, (psi, _) in enumerate(seq)]
    assert got == seq


def test_reconfigure_keeps_the_state_of_unchanged_rules() -> None:
    p = policy(sustain=2)
    p.evaluate(normal(FRAGMENTED), 0.0)
    p.current.config = current(
        RULE.format(sustain=2, reclaim="true", min="4M", max_event="64M", max_hour="256M")
    ).config
    p.reconfigure()
    assert kinds(p.evaluate(normal(FRAGMENTED), 1.0)) == ["triggered"]  # the count went on
    p.current.config = current(
        RULE.format(sustain=3, reclaim="true", min="4M", max_event="64M", max_hour="256M")
    ).config
    p.reconfigure()
    assert p.watches == {}  # a changed rule starts afresh


# -- a reserve ------------------------------------------------------------------------------

RESERVE = """
triggers:
  allocation_failures: null
rules:
  - name: camera
    zones: {zones}
    orders: [9]
    reserve: {{size: 8M}}
    sustain: {sustain}
reclaim:
  min: 64K
"""
# 8M with 4 KiB pages: 2048 pages. Free pages in blocks of order 9 or larger, (count << order) summed:
ONE_HUGE = [1000] + [0] * 8 + [1, 0]  # 512 (plus 1000 pages of order 0, which do not count)
THREE_HUGE = [0] * 9 + [1, 1]  # 512 + 1024 = 1536
FOUR_HUGE = [0] * 10 + [2]  # 2048


def reserve_policy(zones: str = '["*"]', sustain: int = 1) -> Policy:
    return Policy(current(RESERVE.format(zones=zones, sustain=sustain)), PAGE)


def test_a_reserve_is_kept_per_node_over_the_zones_its_rule_watches() -> None:
    p = reserve_policy()
    # Node 0: DMA32 512 + Normal 512 = 1024 pages (4 MiB) of 2048: under. Node 1: 2048: kept.
    obs = observation({(0, "DMA32"): ONE_HUGE, (0, "Normal"): ONE_HUGE, (1, "Normal"): FOUR_HUGE})
    found, _ = p.sources(obs)
    assert [(c.kind, c.where(), v) for c, v in found] == [
        ("reserve", "node 0 order 9", 1024.0),
        ("reserve", "node 1 order 9", 2048.0),
    ]
    plan = p.evaluate(obs, 0.0)
    assert [(d.source.target, d.value) for d in plan.decisions] == [(("node", 0, "*"), 1024.0)]
    source = plan.decisions[0].source
    assert source.text(1024.0) == "4.0 MiB free in blocks of order 9 or larger (reserve 8.0 MiB)"
    assert source.fields() == {
        "trigger": "camera:reserve", "rule": "camera", "metric": "reserve", "node": 0, "zone": "*", "order": 9,
        "threshold": "8.0", "clear": "8.0",
    }
    assert source.closeness(1024.0, obs) == 2.0  # 2048 / 1024: the status line's "200% of trigger"
    # A rule for one zone counts that zone alone: DMA32's 512 of node 0.
    only = reserve_policy("[DMA32]")
    assert [(c.where(), v) for c, v in only.sources(obs)[0]] == [("node 0 zones DMA32 order 9", 512.0)]


def test_a_reserve_starts_below_its_size_and_ends_at_it() -> None:
    p = reserve_policy(sustain=2)
    below, at = {(0, "Normal"): THREE_HUGE}, {(0, "Normal"): FOUR_HUGE}
    got = [kinds(p.evaluate(observation(zones), 10.0 * n)) for n, zones in enumerate([below, below, below, at])]
    assert got == [[], ["triggered"], [], ["cleared"]]


def test_a_reserve_compacts_then_reclaims_the_shortfall_then_compacts_again() -> None:
    p = reserve_policy()
    decision = first_decision(p, observation({(0, "Normal"): ONE_HUGE}))
    # Compaction brings it to 1536 pages: the shortfall is 2048 - 1536 = 512 pages (2 MiB), over the 64K minimum.
    after_compaction = observation({(0, "Normal"): THREE_HUGE})
    steps = ladder(p, decision, [observation({(0, "Normal"): ONE_HUGE}), after_compaction, after_compaction])
    assert steps == [
        Step(COMPACT, node=0),
        Step(RECLAIM, node=0, size=512 * PAGE, after_compaction=True),
        Step(COMPACT, node=0),
    ]
    # Compaction alone can be enough: the ladder stops there.
    decision = first_decision(reserve_policy(), observation({(0, "Normal"): ONE_HUGE}))
    steps = ladder(p, decision, [observation({(0, "Normal"): ONE_HUGE}), observation({(0, "Normal"): FOUR_HUGE})])
    assert steps == [Step(COMPACT, node=0)]


def test_a_reserve_s_reclaim_stays_within_the_caps() -> None:
    p = Policy(current(RESERVE.format(zones='["*"]', sustain=1).replace("size: 8M", "size: 256M")), PAGE)
    obs = observation({(0, "Normal"): ONE_HUGE})
    decision = first_decision(p, obs)
    # Shortfall after compaction: 65536 - 512 pages (254 MiB): 64M, the per-event cap.
    assert p.next_step(decision, obs, [Step(COMPACT, node=0)], BOTH, 0.0) == Step(
        RECLAIM, node=0, size=64 << 20, after_compaction=True
    )
    # 200M taken within the hour: 56M is what is left of the 256M hourly cap.
    p.reclaimed(200 << 20, obs, 0.0, watch=False)
    assert p.next_step(decision, obs, [Step(COMPACT, node=0)], BOTH, 10.0) == Step(
        RECLAIM, node=0, size=56 << 20, after_compaction=True
    )


def test_a_reserve_cools_down_apart_from_its_node_s_zones() -> None:
    text = """
triggers:
  allocation_failures: null
rules:
  - {name: camera, orders: [9], reserve: {size: 8M}}
  - {name: huge, zones: [Normal], orders: [9], unusable_index: {trigger: 0.9, clear: 0.6}}
"""
    p = Policy(current(text), PAGE)
    # FRAGMENTED (no block of order 9): the index is 1.000 and the reserve 0 pages: both hold, two targets.
    obs = normal(FRAGMENTED)
    plan = p.evaluate(obs, 0.0)
    assert sorted(d.source.target for d in plan.decisions) == [("node", 0, "*"), ("zone", 0, "Normal")]
    reserve = next(d for d in plan.decisions if d.source.kind == "reserve")
    p.acted(reserve, 0.0)
    assert [d.source.target for d in p.evaluate(obs, 1.0).decisions] == [("zone", 0, "Normal")]


# -- actions that buy nothing back off -------------------------------------------------------

# The unusable index at order 9 with n free pages of order 0 and one free order-9 block:
# n * 1000 // (n + 512). From FRAGMENTED (1000) to the clear level (600) is 400 thousandths;
# a ladder works when the next poll has covered a tenth of that (WORKED): 40.
NINE_SIXTY = [12288] + [0] * 8 + [1, 0]  # 12288000 // 12800 = 960: 40 of 400, 10.0%: works
NINE_SIXTY_ONE = [12700] + [0] * 8 + [1, 0]  # 12700000 // 13212 = 961: 39 of 400, 9.75%: nothing bought


@pytest.mark.parametrize(
    ("ladder_ends", "next_poll", "expected"),
    [
        # Each row: one ladder per cooldown, the value its steps left, the value at the next poll; expected:
        # the cooldown after each judgement (guards.cooldown 60, doubled up to cooldown_max 960) and
        # whether a backed_off notice said so.
        (
            [FRAGMENTED] * 7,
            [FRAGMENTED] * 5 + [NINE_SIXTY, NINE_SIXTY_ONE],
            [(120, True), (240, True), (480, True), (960, True), (960, True), (60, False), (120, True)],
        ),
        # The steps reached the clear level (0.494), but by the next poll what they freed was gone (1.000).
        ([BELOW_CLEAR] * 2, [FRAGMENTED] * 2, [(120, True), (240, True)]),
        # The steps changed nothing, but by the next poll the value had moved: counted as working.
        ([FRAGMENTED] * 2, [NINE_SIXTY_ONE, NINE_SIXTY], [(120, True), (60, False)]),
    ],
    ids=["doubling-to-the-bound-then-reset", "gone-by-the-next-poll", "judged-at-the-next-poll"],
)
def test_a_ladder_that_buys_nothing_doubles_the_zone_s_cooldown(
    ladder_ends: List[List[int]], next_poll: List[List[int]], expected: List[Tuple[int, bool]]
) -> None:
    p = policy(min="64K")
    now = 0.0
    got = []
    for end, then in zip(ladder_ends, next_poll):
        (decision,) = p.evaluate(normal(FRAGMENTED), now).decisions
        steps = ladder(p, decision, [normal(FRAGMENTED), normal(end), normal(end), normal(end)])
        assert steps[0] == Step(COMPACT, node=0)
        p.acted(decision, now)
        plan = p.evaluate(normal(then), now + 1.0)
        told = [n for n in plan.notices if n.kind == "backed_off"]
        cooldown = p.cooldown(("zone", 0, "Normal"))
        got.append((cooldown, bool(told)))
        # The zone waits exactly that long after its ladder.
        assert p.evaluate(normal(FRAGMENTED), now + cooldown - 0.5).decisions == ()
        now += cooldown
    assert got == expected


def test_the_backed_off_notice_says_what_the_ladder_bought_and_how_long_the_zone_waits() -> None:
    p = policy()
    decision = first_decision(p, normal(FRAGMENTED))
    p.acted(decision, 0.0)
    (notice,) = [n for n in p.evaluate(normal(NINE_SIXTY_ONE), 1.0).notices if n.kind == "backed_off"]
    assert notice_text(notice) == (
        "huge:unusable_index: node 0 zone Normal order 9: the last actions bought nothing: 1.000 before, 0.961 at"
        " the next poll (10% of the way to the clear level); next action after 120 s"
    )
    assert (notice.source, notice.before, notice.value) == (decision.source, 1000, 961)
    assert notice.fields == (("BEFORE", "1.000"), ("PROGRESS", "0.098"), ("COOLDOWN_S", "120"), ("COOLDOWN_BEFORE_S", "60"))


@pytest.mark.parametrize(
    ("text", "before", "after", "expected"),
    [
        # A reserve of 8M (2048 pages) at order 3, at 1024: the way is 1024 pages; 1096 is 72/1024 = 7.0%,
        # 1128 is 104/1024 = 10.2%.
        ("{name: r, zones: [Normal], orders: [3], reserve: {size: 8M}}", 1024, 1096, 120),
        ("{name: r, zones: [Normal], orders: [3], reserve: {size: 8M}}", 1024, 1128, 60),
        # A watermark: 100 free pages, the clear mark (high) 160: 105 is 5/60 = 8.3%; 106 is 6/60 = 10%.
        ("{name: w, zones: [Normal], orders: [0], watermark: {below: low, clear: high}}", 100, 105, 120),
        ("{name: w, zones: [Normal], orders: [0], watermark: {below: low, clear: high}}", 100, 106, 60),
    ],
)
def test_progress_toward_the_clear_level_of_each_kind(text: str, before: int, after: int, expected: int) -> None:
    p = Policy(current(f"triggers:\n  allocation_failures: null\nrules:\n  - {text}\n"), PAGE)
    marks = (80, 120, 160)

    def at(pages: int) -> Observation:
        # `pages` free, in order-3 blocks (a multiple of 8 here): the reserve's value and the watermark's.
        return normal([0, 0, 0, pages // 8] + [0] * 7, marks=marks, free_override={(0, "Normal"): pages})

    decision = first_decision(p, at(before))
    assert decision.value == before
    p.acted(decision, 0.0)
    p.evaluate(at(after), 1.0)
    assert p.cooldown(decision.source.target) == expected


def test_a_skip_or_a_dry_run_is_not_judged_and_cooldown_max_equal_to_cooldown_turns_back_off_off() -> None:
    p = policy()
    decision = first_decision(p, normal(FRAGMENTED))
    p.acted(decision, 0.0, judge=False)
    assert kinds(p.evaluate(normal(FRAGMENTED), 1.0)) == [] and p.cooldown(decision.source.target) == 60
    text = RULE.format(sustain=1, reclaim="true", min="4M", max_event="64M", max_hour="256M")
    off = Policy(current(text.replace("cooldown: 60", "cooldown: 60\n  cooldown_max: 60")), PAGE)
    decision = first_decision(off, normal(FRAGMENTED))
    off.acted(decision, 0.0)
    assert kinds(off.evaluate(normal(FRAGMENTED), 1.0)) == [] and off.cooldown(decision.source.target) == 60
