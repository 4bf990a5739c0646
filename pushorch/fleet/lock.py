"""Locks: a local flock so overlapping cron runs never run at once, and a fleet lock on a lock host.

The fleet lock is a directory made with `mkdir` on one host (atomic), holding an owner record and an
expiry that the run renews while it works; a controller killed mid-run leaves a lock that expires
and can be taken over. Every mutating command (apply, rollback, reconcile) takes both.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import getpass
import json
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pushorch.connection import ConnectionSettings
from pushorch.errors import CommandFailed, LockHeld, PushorchError
from pushorch.fleet import commands as lock_cmd
from pushorch.fleet import record as fleetstate
from pushorch.fleet.record import FleetState
from pushorch.transport import Transport
from pushorch.variables import redacted_argv

DEFAULT_TTL = 900  # seconds; renewed every third of it while the run lasts


def default_lock_file() -> Path:
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or Path.home() / ".cache")
    return base / "pushorch" / "run.lock"


class LocalLock:
    """flock(2) on a file: held until the process ends (even by SIGKILL: the kernel drops it)."""

    def __init__(self, path: Path, wait: float = 0.0, command: tuple[str, ...] = ()) -> None:
        self.path, self.wait, self.command = path, wait, command
        self._handle: IO[str] | None = None

    def __enter__(self) -> LocalLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another pushorch run"
                    handle.close()
                    raise LockHeld(f"local lock {self.path} is held by {holder}") from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({' '.join(redacted_argv(list(self.command[:3])))})\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def owner_record(ttl: int, command: tuple[str, ...] = ()) -> dict[str, Any]:
    """Who holds a lock (or made a change): `command` is the run's command line as the CLI was given
    it (sys.argv is not it when the CLI is called in-process)."""
    return {
        "controller": socket.gethostname(),
        "pid": os.getpid(),
        "user": getpass.getuser(),
        # Recorded on hosts and passed on the lock command's argv: no credential's value may be in it.
        "command": " ".join(redacted_argv(list(command) or ["pushorch", *sys.argv[1:]]))[:300],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "ttl": ttl,
    }


Stamp = tuple[float, float]  # (monotonic, suspend-counting) seconds


def _suspend_counting() -> float:
    """A clock that goes on while the machine sleeps but is not stepped by NTP: Linux's
    CLOCK_BOOTTIME. Where there is none, the wall clock (which NTP may step: a step can only make a
    lock count as lost early, never late)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.time()


def stamp() -> Stamp:
    """Both clocks: monotonic stops while a laptop sleeps, the suspend-counting one does not; a
    lock's TTL has passed when either says so."""
    return time.monotonic(), _suspend_counting()


class Renewing:
    """What both fleet locks share: once held, renewed every third of the TTL; lost when a renewal
    says so, or when none succeeded for a whole TTL on either clock (a controller that slept through
    its TTL acts on nothing before it has renewed: it stops). Subclasses say how to renew and how to
    name it, and how to write the fleet record beside it."""

    ttl: int
    clock: Callable[[], Stamp]
    _renewer: asyncio.Task[None] | None
    _lost: str | None
    _valid_until: Stamp  # the last successful renewal + ttl, on both clocks

    def _held_since(self, started: Stamp) -> None:
        self._valid_until = (started[0] + self.ttl, started[1] + self.ttl)
        self._renewer = asyncio.create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while self._lost is None:
            await asyncio.sleep(max(1.0, self.ttl / 3))
            await self.confirm()

    async def confirm(self) -> str | None:
        """Renew now; returns why the lock is lost, or None while it is ours. A lock whose TTL passed
        since the last renewal stays lost even when this renewal would succeed: another run may
        have held it in between."""
        if self.lost() is not None:
            return self._lost
        started = self.clock()
        renewed = await self._renew()
        if renewed is True and self.lost() is None:
            self._valid_until = (started[0] + self.ttl, started[1] + self.ttl)
        elif isinstance(renewed, str):
            self._lost = renewed
        return self.lost()

    def lost(self) -> str | None:
        """Why this run no longer holds the lock (None while it does), without asking anyone."""
        if self._lost is None and self._valid_until[0]:
            mono, asleep = self.clock()
            if mono > self._valid_until[0]:
                self._lost = self._unrenewed()
            elif asleep > self._valid_until[1]:
                since = asleep - self._valid_until[1] + self.ttl
                self._lost = f"{self._unrenewed()}: {since:.0f}s passed counting suspend (was this controller asleep?)"
        return self._lost

    async def write_record(self, state: FleetState) -> bool:
        """The fleet record, written only while this run holds the lock (confirmed first); after a
        loss nothing is written. True when written."""
        if await self.confirm() is not None:
            return False
        return await self._put_record(state)

    async def _put_record(self, state: FleetState) -> bool:
        raise NotImplementedError

    def _stop_renewing(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None

    async def _renew(self) -> bool | str:
        """True: renewed; False: this renewal missed (retried; the TTL leaves room); a string: lost, why."""
        raise NotImplementedError

    def _unrenewed(self) -> str:
        raise NotImplementedError


@dataclass
class FleetLock(Renewing):
    """The lock directory on `host`; `acquire` waits up to `wait` seconds, then raises LockHeld.

    While the run lasts the lock is renewed every third of its TTL. A renewal that finds another
    token there (someone took the lock over) or no successful renewal for a whole TTL (it may have
    expired and been taken) makes the lock lost: `lost()` then says why, and the executor stops
    before its next mutating step. `confirm()` asks the lock host now (before each rollout batch).
    """

    host: str
    transport: Transport
    ttl: int = DEFAULT_TTL
    wait: float = 0.0
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    command: tuple[str, ...] = ()  # the run's command line, for the owner record
    taken_over: dict[str, Any] | None = None
    clock: Callable[[], Stamp] = stamp
    _renewer: asyncio.Task[None] | None = None
    _lost: str | None = None
    _valid_until: Stamp = (0.0, 0.0)

    async def acquire(self) -> None:
        owner = json.dumps(owner_record(self.ttl, self.command), sort_keys=True)
        deadline = time.monotonic() + self.wait
        while True:
            started = self.clock()
            done = await self.transport.run(lock_cmd.acquire(owner, self.token, self.ttl), timeout=30)
            first, _, rest = done.stdout.partition("\n")
            if done.exit_status == 0:
                if first == "TAKEN":
                    self.taken_over = _owner(rest)
                self._held_since(started)
                return
            if done.exit_status != 3:
                raise CommandFailed(self.host, "fleet lock", done.exit_status, done.stderr or done.stdout)
            if time.monotonic() >= deadline:
                raise LockHeld(f"fleet lock on {self.host} is held: {describe(rest)}")
            await asyncio.sleep(1.0)

    async def _renew(self) -> bool | str:
        try:
            done = await self.transport.run(lock_cmd.renew(self.token, self.ttl), timeout=30)
        except Exception:
            return False
        if done.ok:
            return True
        if done.stdout.startswith("LOST"):
            holder = describe_owner(_owner(done.stdout.partition("\n")[2]))
            return f"the fleet lock on {self.host} was taken over by {holder}"
        return False

    def _unrenewed(self) -> str:
        return f"the fleet lock on {self.host} was not renewed for {self.ttl}s (it may have been taken over)"

    async def read_record(self) -> FleetState:
        return await read_state(self.transport)

    async def _put_record(self, state: FleetState) -> bool:
        """On the lock host, only if the lock directory still holds this run's token (checked there,
        in the same command that writes)."""
        try:
            done = await self.transport.run(
                lock_cmd.write_state(self.token), stdin=state.to_json().encode(), timeout=30
            )
        except PushorchError:
            return False  # a record not written makes the next run wait longer, no worse
        if done.stdout.startswith("LOST"):
            self._lost = f"the fleet lock on {self.host} was taken over before the fleet record was written"
        return done.ok

    async def release(self) -> None:
        self._stop_renewing()
        with contextlib.suppress(Exception):  # an unreleased lock expires
            await self.transport.run(lock_cmd.release(self.token), timeout=30)


def _owner(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text.strip().splitlines()[0]) if text.strip() else {}
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def describe_owner(owner: dict[str, Any]) -> str:
    """`user@controller pid N (command), since TIME`."""
    return (
        f"{owner.get('user', '?')}@{owner.get('controller', '?')} pid {owner.get('pid', '?')}"
        f" ({owner.get('command', '?')}), since {owner.get('started', '?')}"
    )


def describe(status_text: str) -> str:
    """`HELD` output (owner JSON, then expires=.. now=..) in words."""
    lines = status_text.strip().splitlines()
    owner = _owner(lines[0]) if lines else {}
    times = dict(part.split("=", 1) for part in (lines[-1].split() if lines else []) if "=" in part)
    left = int(times.get("expires", 0) or 0) - int(times.get("now", 0) or 0)
    who = describe_owner(owner)
    return who + (f", expires in {left}s" if left > 0 else ", expired (the next run takes it over)")


async def read_state(transport: Transport) -> FleetState:
    """The fleet record on the lock host, with the lock host's clock; empty when it cannot be read."""
    try:
        done = await transport.run(lock_cmd.read_state(), timeout=30)
    except PushorchError:
        return FleetState()
    return fleetstate.parse(done.stdout) if done.ok else FleetState()


async def write_state(transport: Transport, state: FleetState) -> None:
    """Written only by the holder of the fleet lock (atomic: temp file + rename)."""
    with contextlib.suppress(PushorchError):  # a record not written makes the next run wait longer, no worse
        await transport.put(state.to_json().encode(), lock_cmd.STATE_FILE, 0o644)


@dataclass(frozen=True, slots=True)
class Locking:
    """What a mutating run locks: `host` (None: the first reachable host of the run, by name) unless
    `enabled` is off; `settings` to reach a lock host outside the run's hosts (-l)."""

    enabled: bool = True
    host: str | None = None
    settings: ConnectionSettings | None = None
    ttl: int = DEFAULT_TTL
    wait: float = 0.0
    backend: str = "mkdir"  # or "consul": a session lock on a KV key, through the lock host's agent
    name: str = "fleet"  # the consul backend's key: pushorch/locks/NAME
    command: tuple[str, ...] = ()  # the run's command line: lock owners and the deploy history name it

    def pick(self, reachable: list[str]) -> str | None:
        """The lock host. With the consul backend it is only the agent asked (the KV store is the
        cluster's): when the named one is away, the first reachable host's agent serves."""
        if not self.enabled:
            return None
        first = sorted(reachable)[0] if reachable else None
        if self.backend == "consul" and self.host is not None and self.host not in reachable:
            return first
        return self.host or first
