"""One round of the soak: an operation, a fault at a random moment of it, the healing, one clean
reconcile, then the invariants. Everything a round does is drawn from `seed:round`, so
`--seed S --only K` replays it."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from bench.soak import faults
from bench.soak.faults import Fault
from bench.soak.invariants import Sampler, at_rest, still_left
from bench.soak.world import SERVICES, Run, World

OPERATIONS = (
    "apply-new",
    "apply-bad",
    "bad-config",
    "rollback",
    "restart",
    "reconcile",
    "apply-limited",
    "two-controllers",
)
END_WITHIN = 300  # seconds a controller may take once its fault is healed


@dataclass
class Round:
    number: int
    operation: str
    fault: Fault
    moment: float  # seconds after the operation started
    hold: float  # seconds the fault lasts
    seen_at: str = ""  # the controller's last line when the fault came
    statuses: list[int | None] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # seen, not pushorch's (Docker's orphan proxies)
    took: float = 0.0

    def header(self, seed: int) -> str:
        return (
            f"seed {seed} round {self.number}: {self.operation}, fault {self.fault} at {self.moment:.1f}s "
            f"for {self.hold:.1f}s (during: {self.seen_at or 'before any output'})"
        )


def draw(seed: int, number: int, world: World, kinds: list[str]) -> tuple[Round, random.Random]:
    rng = random.Random(f"{seed}:{number}")
    operation = rng.choice(OPERATIONS)
    fault = faults.KINDS[rng.choice(kinds)](rng, world)
    return Round(number, operation, fault, moment=rng.uniform(0, 7), hold=rng.uniform(1, 8)), rng


def _flip(version: str) -> str:
    return "v2" if version == "v1" else "v1"


def _start(world: World, rnd: Round, rng: random.Random) -> list[Run]:
    """Change the playbook as the operation needs and start its controller(s)."""
    playbook = str(world.playbook)
    op = rnd.operation
    if op in ("apply-new", "reconcile", "apply-limited", "two-controllers"):
        world.write(v=_flip(world.wanted["v"]))
    elif op == "apply-bad":
        world.write(bad_host=rng.choice(list(world.hosts)))
    elif op == "bad-config":
        world.write(conf=f"bad-{rnd.number}")
    if op == "rollback":
        return [world.start("rollback", playbook, rng.choice([s for s in SERVICES if s != "cfg"]))]
    if op == "restart":
        return [world.start("restart", playbook, rng.choice(list(SERVICES)))]
    if op == "reconcile":
        return [world.start("reconcile", playbook)]
    if op == "apply-limited":
        return [world.start("apply", "-l", rng.choice(list(world.hosts)), playbook)]
    if op == "two-controllers":
        return [world.start("apply", playbook), world.start("apply", playbook, lock_file="other.lock")]
    return [world.start("apply", playbook)]


def play(world: World, rnd: Round, rng: random.Random) -> Round:
    began = time.monotonic()
    lost = {rnd.fault.host} if rnd.fault.serving_lost and rnd.fault.host else set()
    with Sampler(world, lost) as sampler:
        runs = _start(world, rnd, rng)
        _sleep_until(began + rnd.moment, runs)
        rnd.seen_at = next((r for r in runs if r.proc.poll() is None), runs[0]).last_line()
        try:  # healed even when the soak itself is stopped (Ctrl-C, SIGTERM): never a lab left faulted
            faults.inject(world, rnd.fault, runs)
            if not faults.in_effect(world, rnd.fault, runs):
                rnd.violations.append(f"(the soak's own) the fault {rnd.fault} did not take effect")
            _sleep_until(time.monotonic() + rnd.hold, runs)
        finally:
            faults.heal(world, rnd.fault)
        for run in runs:
            if not run.ended(END_WITHIN):
                rnd.violations.append(f"the controller did not end {END_WITHIN}s after the healing: {run.last_line()}")
        rnd.statuses = [run.status for run in runs]
        rnd.violations += [_crashed(run) for run in runs if _crashed(run)]
        # The bad operations' playbook is put back: the healing run converges to a good one.
        if rnd.operation == "apply-bad":
            world.write(bad_host="none")
        elif rnd.operation == "bad-config":
            world.write(conf=f"good-{rnd.number}")
        healing = world.run("reconcile", str(world.playbook), "--lock-wait", "90")
        if healing.status != 0:
            rnd.violations.append(f"the healing reconcile exited {healing.status}: {healing.summary()}")
    rnd.notes = sorted(set(sampler.notes))
    more = len(sampler.violations) - 5
    rnd.violations += sampler.violations[:5] + ([f"... {more} more"] if more > 0 else [])
    plan = world.start("plan", str(world.playbook), "--detailed-exitcode")  # reads only: beside the looks
    looked = at_rest(world)
    plan.ended(600)
    rnd.violations += still_left(world, looked)
    if plan.status != 0:
        rnd.violations.append(f"plan --detailed-exitcode after the healing exited {plan.status}: {plan.summary()}")
    rnd.took = time.monotonic() - began
    return rnd


def _crashed(run: Run) -> str:
    """An internal error (exit 1) or a traceback is a violation whatever the fault."""
    if run.status == 1 or "Traceback" in run.output():
        return f"the controller crashed (exit {run.status}): {run.summary()}"
    return ""


def _sleep_until(deadline: float, runs: list[Run]) -> None:
    """Until `deadline`, or until every controller ended (a fault after the run would test nothing)."""
    while time.monotonic() < deadline and any(run.proc.poll() is None for run in runs):
        time.sleep(0.05)
