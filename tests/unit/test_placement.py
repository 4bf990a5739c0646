"""Placement with failover (pure): who runs a `replicas` service when hosts fail, return or stand in."""

from __future__ import annotations

from pushorch.observed import ObservedContainer, ObservedHost
from pushorch.planner.labels import REPLACES
from pushorch.planner.placement import Candidates, Memory, place, place_with_failover, placed
from pushorch.spec import Failover, HostSpec, Play, Service, Spec

HOSTS = ["lab-1", "lab-2", "lab-3"]


def test_the_ranking_these_tests_rely_on() -> None:
    assert place("rep", HOSTS, 3) == ["lab-2", "lab-1", "lab-3"]


def test_a_returning_host_stays_out_while_its_stand_in_runs_and_enough_others_do() -> None:
    # lab-1 was lost, lab-3 stands in for it; lab-1 is back: nothing moves back (no failback).
    c = Candidates("rep", 2, HOSTS, HOSTS, ["lab-2", "lab-3"], {"lab-1"})
    assert place_with_failover(c) == (["lab-2", "lab-3"], {})


def test_a_host_a_stand_in_replaced_takes_an_instance_again_rather_than_the_service_running_short() -> None:
    # Soak seed 254786 r200: lab-2's instance failed past failover.after, lab-3 stood in for lab-1.
    # Only lab-1 and lab-3 are eligible: both run it, not lab-3 alone.
    c = Candidates("rep", 2, HOSTS, ["lab-1", "lab-3"], ["lab-3"], {"lab-1"})
    chosen, moves = place_with_failover(c)
    assert chosen == ["lab-1", "lab-3"]
    assert moves == {}  # lab-1 is one of the ideal hosts: an instance of its own, not a stand-in


def test_a_lost_host_moves_to_the_next_by_rank() -> None:
    c = Candidates("rep", 2, HOSTS, ["lab-1", "lab-3"], ["lab-1"])
    assert place_with_failover(c) == (["lab-1", "lab-3"], {"lab-3": "lab-2"})


def _spec() -> Spec:
    service = Service(name="rep", image="reg/rep:1", replicas=2, failover=Failover(after=5))
    play = Play(hosts="docker", services=[service])
    return Spec(("p.yml",), {h: HostSpec(h, {}, (play,), {}) for h in HOSTS})


def _rep(created: str, running: bool = True, stands_in_for: str = "", finished: str = "") -> ObservedContainer:
    labels = {"pushorch.service": "rep", **({REPLACES: stands_in_for} if stands_in_for else {})}
    state = "running" if running else "exited"
    return ObservedContainer("id", "rep-1", "reg/rep:1", "sha", state, None, labels, {}, created, finished)


def _hosts(**containers: tuple[ObservedContainer, ...]) -> dict[str, ObservedHost]:
    return {h: ObservedHost(h, docker_running=True, containers=containers.get(h.replace("-", "_"), ())) for h in HOSTS}


NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
STAND_IN = _rep("2027-01-15T07:00:00.5Z", stands_in_for="lab-1")


def test_a_host_filled_again_keeps_its_instance_and_a_stale_one_does_not() -> None:
    memory = Memory(now=NOW)
    # lab-2's instance stopped a minute ago (past failover.after): lab-1 is filled, beside the stand-in.
    failed = _hosts(
        lab_2=(_rep("2027-01-15T06:00:00Z", running=False, finished="2027-01-15T07:59:00Z"),), lab_3=(STAND_IN,)
    )
    assert placed(_spec(), failed, memory)["rep"].hosts == ["lab-1", "lab-3"]
    # The next pass: lab-1's instance is newer than its stand-in, so it stays; lab-2 gets nothing back.
    filled = _hosts(lab_1=(_rep("2027-01-15T07:59:30.25Z"),), lab_3=(STAND_IN,))
    assert placed(_spec(), filled, memory)["rep"].hosts == ["lab-1", "lab-3"]
    # An instance older than the stand-in is what lab-1 ran before it was lost: it goes, lab-2 keeps one.
    stale = _hosts(lab_1=(_rep("2027-01-15T07:00:00.25Z"),), lab_2=(_rep("2027-01-15T06:00:00Z"),), lab_3=(STAND_IN,))
    assert placed(_spec(), stale, memory)["rep"].hosts == ["lab-2", "lab-3"]
