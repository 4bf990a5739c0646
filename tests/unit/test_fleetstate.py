"""The fleet record (pure): durations on the lock host's clock, what each observation keeps and drops."""

from __future__ import annotations

from dataclasses import replace

from pushorch.fleet import record as fleetstate
from pushorch.fleet.record import Failing, FleetState


def _at(now: float, state: FleetState) -> FleetState:
    return replace(state, now=now)


def test_unreachable_counts_only_an_unbroken_stretch() -> None:
    seen = fleetstate.observe(FleetState(1000), scope=["a", "b"], unreachable=["b"], failing=[], healthy=[])
    assert seen.unreachable == {"b": 1000}
    later = fleetstate.observe(_at(1030, seen), scope=["a", "b"], unreachable=["b"], failing=[], healthy=[])
    assert later.unreachable_for("b") == 30
    back = fleetstate.observe(_at(1050, later), scope=["a", "b"], unreachable=[], failing=[], healthy=[])
    assert back.unreachable == {}
    again = fleetstate.observe(_at(1100, back), scope=["a", "b"], unreachable=["b"], failing=[], healthy=[])
    assert again.unreachable_for("b") == 0  # the stretch starts again
    # A run limited to other hosts (-l) says nothing about b: its record stays.
    other = fleetstate.observe(_at(1200, again), scope=["a"], unreachable=[], failing=[], healthy=[])
    assert other.unreachable == {"b": 1100}


def test_failing_instances_keep_their_start_and_replacement_and_go_when_healthy() -> None:
    start = fleetstate.observe(FleetState(1000), scope=["a"], unreachable=[], failing=[("web", "a")], healthy=[])
    marked = fleetstate.replaced(_at(1070, start), [("web", "a")], 1070)
    assert marked.failing_of("web", "a") == Failing(1070, 1070, 1070)  # the fresh container's clock starts
    still = fleetstate.observe(_at(1100, marked), scope=["a"], unreachable=[], failing=[("web", "a")], healthy=[])
    assert still.failing_of("web", "a") == Failing(1070, 1070, 1100)
    # Moved away (not running on a any more): the host stays out for an hour after the replacement.
    moved = fleetstate.observe(_at(1200, still), scope=["a"], unreachable=[], failing=[], healthy=[])
    assert moved.failing_of("web", "a") is not None
    forgotten = fleetstate.observe(_at(1070 + 3601, moved), scope=["a"], unreachable=[], failing=[], healthy=[])
    assert forgotten.failing_of("web", "a") is None
    healthy = fleetstate.observe(_at(1100, marked), scope=["a"], unreachable=[], failing=[], healthy=[("web", "a")])
    assert healthy.failing == {}


def test_the_record_round_trips_and_a_damaged_one_is_no_record() -> None:
    state = FleetState(5, {"b": 1.0}, {"web@a": Failing(2.0, 3.0, 4.0)}, {"web": ("a", "b")}, {"b": 4.0})
    assert fleetstate.parse("5\n" + state.to_json()) == state
    assert fleetstate.parse("5\n{not json") == FleetState(5.0)
    assert not fleetstate.parse("").known and fleetstate.parse("7\n").known


def _lost(state: FleetState, now: float, scope: list[str], unreachable: list[str]) -> FleetState:
    return fleetstate.observe(
        _at(now, state), scope=scope, unreachable=unreachable, failing=[], healthy=[], window=lambda _: 40.0
    )


def test_a_run_limited_to_other_hosts_breaks_the_proof_of_an_unreachable_stretch() -> None:
    """The lab case: failover.after 40 s. b is paused (recorded at 1000), comes back, but only runs
    limited to a see the fleet (b's entry is kept, its confirmation dropped), then b is paused again:
    its stretch starts at 1300, not 1000, so nothing moves seconds after it went away."""
    first = _lost(FleetState(1000), 1000, ["a", "b"], ["b"])
    assert first.unreachable == {"b": 1000} and first.confirmed == {"b": 1000}
    going_on = _lost(first, 1030, ["a", "b"], ["b"])  # confirmed 30 s later: the stretch goes on
    assert going_on.unreachable_for("b") == 30
    limited = _lost(going_on, 1200, ["a"], [])  # -l a: b's entry stays, its proof goes
    assert limited.unreachable == {"b": 1000} and limited.confirmed == {}
    again = _lost(limited, 1300, ["a", "b"], ["b"])
    assert again.unreachable == {"b": 1300} and again.unreachable_for("b") == 0
    assert _lost(again, 1330, ["a", "b"], ["b"]).unreachable_for("b") == 30


def test_confirmations_older_than_the_window_prove_nothing() -> None:
    """The window is failover.after but at least PROOF_WINDOW (cron every 5 minutes with after 60 s
    still fails over); a record older than that (one that sat on a former lock host while another
    kept the lock, or from before confirmations were kept) starts every duration from zero."""
    assert fleetstate.PROOF_WINDOW == 600
    every_5_minutes = _lost(_lost(FleetState(1000), 1000, ["b"], ["b"]), 1300, ["b"], ["b"])
    assert every_5_minutes.unreachable_for("b") == 300
    assert _lost(every_5_minutes, 1300 + 601, ["b"], ["b"]).unreachable_for("b") == 0
    stale = fleetstate.parse('5000\n{"unreachable": {"b": 100}, "confirmed": {"b": 120}, '
                             '"failing": {"web@a": {"since": 100, "seen": 120}}}')  # fmt: skip
    seen = fleetstate.observe(stale, scope=["a", "b"], unreachable=["b"], failing=[("web", "a")], healthy=[],
                              window=lambda _: 60.0)  # fmt: skip
    assert seen.unreachable_for("b") == 0 and seen.failing_of("web", "a") == Failing(5000, 0, 5000)
    old_format = fleetstate.parse('5000\n{"unreachable": {"b": 4990}}')  # no confirmation recorded
    assert fleetstate.observe(old_format, scope=["b"], unreachable=["b"], failing=[], healthy=[],
                              window=lambda _: 60.0).unreachable_for("b") == 0  # fmt: skip


def test_a_failing_instance_outside_a_run_loses_its_proof() -> None:
    start = fleetstate.observe(FleetState(1000), scope=["a"], unreachable=[], failing=[("web", "a")], healthy=[])
    away = fleetstate.observe(_at(1100, start), scope=["b"], unreachable=[], failing=[], healthy=[])
    assert away.failing_of("web", "a") == Failing(1000, 0, 0)
    back = fleetstate.observe(_at(1130, away), scope=["a"], unreachable=[], failing=[("web", "a")], healthy=[])
    assert back.failing_of("web", "a") == Failing(1130, 0, 1130)
