"""The fleet record (pure): durations on the lock host's clock, what each observation keeps and drops."""

from __future__ import annotations

from pushorch import fleetstate
from pushorch.fleetstate import Failing, FleetState


def _at(now: float, state: FleetState) -> FleetState:
    return FleetState(now, state.unreachable, state.failing, state.placed)


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
    assert marked.failing_of("web", "a") == Failing(1070, 1070)  # the fresh container's clock starts
    still = fleetstate.observe(_at(1100, marked), scope=["a"], unreachable=[], failing=[("web", "a")], healthy=[])
    assert still.failing_of("web", "a") == Failing(1070, 1070)
    # Moved away (not running on a any more): the host stays out for an hour after the replacement.
    moved = fleetstate.observe(_at(1200, still), scope=["a"], unreachable=[], failing=[], healthy=[])
    assert moved.failing_of("web", "a") is not None
    forgotten = fleetstate.observe(_at(1070 + 3601, moved), scope=["a"], unreachable=[], failing=[], healthy=[])
    assert forgotten.failing_of("web", "a") is None
    healthy = fleetstate.observe(_at(1100, marked), scope=["a"], unreachable=[], failing=[], healthy=[("web", "a")])
    assert healthy.failing == {}


def test_the_record_round_trips_and_a_damaged_one_is_no_record() -> None:
    state = FleetState(5, {"b": 1.0}, {"web@a": Failing(2.0, 3.0)}, {"web": ("a", "b")})
    assert fleetstate.parse("5\n" + state.to_json()) == state
    assert fleetstate.parse("5\n{not json") == FleetState(5.0)
    assert not fleetstate.parse("").known and fleetstate.parse("7\n").known
