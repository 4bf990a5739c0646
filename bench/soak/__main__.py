"""`python -m bench.soak`: the fault soak's command line (see bench/soak/__init__.py)."""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.soak import faults
from bench.soak.invariants import at_rest
from bench.soak.rounds import draw, play
from bench.soak.world import World


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--faults", type=int, default=20, help="rounds, one fault each (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="default: a fresh one, printed")
    parser.add_argument("--only", type=int, default=None, help="replay this round of the seed only")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(faults.KINDS), help="comma-separated fault kinds")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "pushorch-soak")
    parser.add_argument("--keep", action="store_true", help="on a violation stop there, the lab as it was")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `timeout` and kill: heal, then stop
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    args.dir.mkdir(parents=True, exist_ok=True)
    world = World.up(args.dir, args.hosts)
    found = soak(world, seed, args.faults, args.only, args.kinds.split(","), args.keep)
    if not (found and args.keep):
        world.lab.down(lambda _: None)
    return 1 if found else 0


def soak(world: World, seed: int, count: int, only: int | None, kinds: list[str], keep: bool) -> int:
    """The rounds; returns how many had a violation. Prints one line per round."""
    began = time.monotonic()
    print(f"soak: seed {seed}, {count if only is None else 1} round(s), lab {world.lab.dir}", flush=True)
    first = world.run("apply", str(world.playbook), "--lock-wait", "90")
    broken = at_rest(world) if first.status == 0 else [f"the first apply exited {first.status}: {first.last_line()}"]
    if broken:
        print("soak: the lab is not converged before the first fault:\n  " + "\n  ".join(broken), flush=True)
        return 1
    bad = 0
    for number in [only] if only is not None else range(1, count + 1):
        rnd, rng = draw(seed, number, world, kinds)
        play(world, rnd, rng)
        verdict = "ok" if not rnd.violations else f"{len(rnd.violations)} VIOLATION(S)"
        print(f"{rnd.header(seed)} -> exit {rnd.statuses}, {rnd.took:.0f}s: {verdict}", flush=True)
        for line in rnd.violations:
            print(f"    {line}", flush=True)
        for line in rnd.notes:
            print(f"    note: {line}", flush=True)
        if rnd.violations:
            bad += 1
            print(f"    replay: python -m bench.soak --seed {seed} --only {number}", flush=True)
            if keep:
                break
            world.run("reconcile", str(world.playbook), "--lock-wait", "90")  # back to a known state
    print(f"soak: {bad} round(s) with violations, {time.monotonic() - began:.0f}s", flush=True)
    return bad


if __name__ == "__main__":
    sys.exit(main())
