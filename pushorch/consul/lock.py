"""The fleet lock in Consul (`pushorch_lock_backend: consul`), as `consul lock` takes one.

A session with a TTL and behavior=release acquires a KV key (`pushorch/locks/NAME`) whose value is
the owner record. The run renews the session every third of its TTL; a renewal Consul answers 404
(the session expired or someone destroyed it to break the lock) makes the lock lost, and the
executor stops before its next step (exit 7). A controller killed mid-run stops renewing: Consul
invalidates the session after its TTL, frees the key, and after the lock-delay the next run takes it.
Same interface as lock.FleetLock: acquire, confirm, lost, release.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pushorch.consul import client as consul_client
from pushorch.errors import LockHeld, PushorchError
from pushorch.fleet import record as fleetstate
from pushorch.fleet.lock import Renewing, Stamp, describe_owner, owner_record, stamp
from pushorch.fleet.record import FleetState
from pushorch.transport import Transport

KEY_PREFIX = "pushorch/locks/"
RECORD_PREFIX = "pushorch/fleet/"  # the fleet record beside the lock: one memory for every controller
MIN_TTL, MAX_TTL = 10, 86400  # Consul's bounds for a session TTL
LOCK_DELAY = 15  # Consul's default: after an invalidation, the key waits this long for a new holder


def key_for(name: str) -> str:
    return KEY_PREFIX + name


def record_key(name: str) -> str:
    return RECORD_PREFIX + name


async def read_record(transport: Transport, name: str) -> tuple[FleetState, int]:
    """The fleet record from the KV store (whichever agent is asked, the store is the cluster's) with
    the asked host's clock, and its ModifyIndex for the check-and-set write (0: none yet). A record
    that cannot be read is no record: nothing moves on what is not known."""
    try:
        clock = await transport.run(("date", "+%s"), timeout=30)
        entry = await consul_client.kv_get(transport, record_key(name))
    except (OSError, TimeoutError, PushorchError):
        return FleetState(), 0
    if not clock.ok:
        return FleetState(), 0
    body = entry.value.decode("utf-8", "replace") if entry is not None else ""
    return fleetstate.parse(f"{clock.stdout.strip()}\n{body}"), entry.modify_index if entry is not None else 0


@dataclass
class ConsulLock(Renewing):
    host: str  # whose agent is asked (the KV store is the cluster's)
    transport: Transport
    ttl: int
    wait: float = 0.0
    name: str = "fleet"
    taken_over: dict[str, Any] | None = None  # never: Consul frees an expired lock itself
    session: str = ""
    command: tuple[str, ...] = ()  # the run's command line, for the owner record
    clock: Callable[[], Stamp] = stamp
    _renewer: asyncio.Task[None] | None = None
    _lost: str | None = None
    _valid_until: Stamp = (0.0, 0.0)
    _owner: dict[str, Any] = field(default_factory=dict)
    _record_index: int = 0  # the record's ModifyIndex as this run read it (check-and-set)

    @property
    def key(self) -> str:
        return key_for(self.name)

    async def acquire(self) -> None:
        ttl = min(max(self.ttl, MIN_TTL), MAX_TTL)
        self.ttl = ttl
        self._owner = owner_record(ttl, self.command)
        value = json.dumps(self._owner, sort_keys=True).encode()
        deadline = time.monotonic() + self.wait
        while True:
            started = self.clock()
            self.session = await consul_client.session_create(self.transport, f"pushorch {self.name}", ttl, LOCK_DELAY)
            if await consul_client.kv_acquire(self.transport, self.key, value, self.session):
                self._held_since(started)
                return
            await consul_client.session_destroy(self.transport, self.session)
            self.session = ""
            if time.monotonic() >= deadline:
                raise LockHeld(f"fleet lock {self.key} in Consul (via {self.host}) is held: {await self.holder()}")
            await asyncio.sleep(1.0)

    async def holder(self) -> str:
        """Who holds the key now, in words (or why it cannot be taken yet)."""
        entry = await consul_client.kv_get(self.transport, self.key)
        if entry is None:
            return "nobody (try again)"
        owner = _owner(entry.value)
        if not entry.session:
            return f"nobody: released by {describe_owner(owner)}, within Consul's lock-delay ({LOCK_DELAY}s)"
        return describe_owner(owner) + f" (session {entry.session})"

    async def _renew(self) -> bool | str:
        try:
            alive = await consul_client.session_renew(self.transport, self.session)
        except (OSError, TimeoutError, PushorchError):
            return False
        if alive:
            return True
        now = ""
        with contextlib.suppress(OSError, TimeoutError, PushorchError):
            now = f"; it is now held by {await self.holder()}"
        return f"the fleet lock {self.key} in Consul was lost (its session expired or was destroyed{now})"

    def _unrenewed(self) -> str:
        return f"the fleet lock {self.key} in Consul was not renewed for {self.ttl}s (session may be gone)"

    async def read_record(self) -> FleetState:
        state, self._record_index = await read_record(self.transport, self.name)
        return state

    async def _put_record(self, state: FleetState) -> bool:
        """In the KV store beside the lock, check-and-set on the index this run read: a record someone
        else wrote since is not overwritten (confirmed just before by write_record)."""
        key = record_key(self.name)
        try:
            if not await consul_client.kv_put(self.transport, key, state.to_json().encode(), cas=self._record_index):
                return False
            entry = await consul_client.kv_get(self.transport, key)
        except (OSError, TimeoutError, PushorchError):
            return False
        self._record_index = entry.modify_index if entry is not None else self._record_index
        return True

    async def release(self) -> None:
        self._stop_renewing()
        if self.session:
            with contextlib.suppress(Exception):  # an unreleased session expires with its TTL
                await consul_client.kv_release(self.transport, self.key, self.session)
                await consul_client.session_destroy(self.transport, self.session)


def _owner(value: bytes) -> dict[str, Any]:
    try:
        data = json.loads(value or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def status(transport: Transport, name: str = "fleet") -> str | None:
    """`HELD by ...` words when the key is held, else None."""
    entry = await consul_client.kv_get(transport, key_for(name))
    if entry is None or not entry.session:
        return None
    return describe_owner(_owner(entry.value)) + f" (session {entry.session})"


async def break_lock(transport: Transport, name: str = "fleet") -> str:
    """Destroy the holder's session: Consul frees the key (after its lock-delay) and the holder's next
    renewal finds it lost."""
    entry = await consul_client.kv_get(transport, key_for(name))
    if entry is None or not entry.session:
        return "NOT-HELD"
    await consul_client.session_destroy(transport, entry.session)
    return "RELEASED"
