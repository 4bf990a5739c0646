"""One host's replacement (ReplaceContainer): stop-first or start-first, gated, and its way back.

Every path ends with the host on one version: the new container passed its gate and is registered
(and ready in every ingress), or it is removed and the old one runs (and is registered) again. Old
containers are stopped, never removed here, so a later revert or `rollback` can start them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pushorch.actions import ReplaceContainer
from pushorch.commands import diagnosis, marks, shell, system
from pushorch.commands import docker as docker_cmd
from pushorch.consul import client as consul_client
from pushorch.consul import commands as consul_cmd
from pushorch.errors import CommandFailed, CommandTimeout, PushorchError, TransportError
from pushorch.execute import config_files, kept
from pushorch.execute.edges import Edges
from pushorch.execute.health import GateResult, Prober, wait_healthy
from pushorch.execute.registration import Registration
from pushorch.observed import SavedFile
from pushorch.transport import Transport
from pushorch.transport.base import Result, time_limit, timeout_message


@dataclass(slots=True)
class HostResult:
    """How one host's replacement ended; `saved` is the Consul definition the old instance had."""

    status: Literal["done", "failed", "unreachable"]
    message: str = ""
    gate_wait: float = 0.0  # asleep between health probes (probes themselves are pushorch's own time)
    saved: str = ""
    saved_files: tuple[SavedFile, ...] = ()  # config files as they were, read before any change


Progress = Callable[[str], None]
# The history record of a step that succeeded, as (append command, its stdin), for the step to write
# with the mark it removes last (fleet/journal.py); None where no history is kept (a unit test).
StepRecord = Callable[[ReplaceContainer], "tuple[tuple[str, ...], bytes] | None"]


class Replacer:
    """Runs one ReplaceContainer (and, later, its revert) over the host's connection."""

    def __init__(
        self,
        action: ReplaceContainer,
        transport: Transport,
        progress: Progress,
        record: StepRecord | None = None,
        edges: Edges | None = None,
    ) -> None:
        self.a, self.t, self.progress, self.record = action, transport, progress, record
        self.edges = edges  # the ingress hosts that route to this instance (execute/edges.py)
        self._probers: dict[str, Prober] = {}  # per container: its addresses are inspected once
        self.consul = Registration(action, transport, self._docker, self._prober)
        self._snapshot: tuple[SavedFile, ...] | None = None  # rollback: the kept container's config files

    def _prober(self, name: str, restarts: int | None = None) -> Prober:
        if name not in self._probers:
            self._probers[name] = Prober(self.t, name, self.a.gate, self.a.become, restarts=restarts)
        return self._probers[name]

    async def replace(self) -> HostResult:
        result = HostResult("done")
        if self.a.restart:
            return await self._restart(result)
        try:
            if self.a.snapshot:
                self._snapshot = await self._read_snapshot()
            # Before anything changes: what the way back must put back. A file that cannot be read
            # back exactly would be lost by a revert, so the host is not touched at all.
            result.saved_files = await self._save_config()
        except TransportError as exc:
            return HostResult("unreachable", str(exc))
        except (PushorchError, ValueError) as exc:
            return HostResult("failed", f"{self.a.service} {self.a.version}: not started: {exc}")
        try:
            if self.a.order == "start-first" and self.a.old:
                result.saved = await self.consul.read()
                await self._start_first(result)
            else:
                await self._stop_first(result)
        except TransportError as exc:
            return HostResult("unreachable", str(exc), result.gate_wait, result.saved)
        except PushorchError as exc:  # a step failed (or timed out) outside the gate: back to the old container
            result.status, result.message = "failed", f"{self.a.service} {self.a.version}: {exc}"
            await self._restore(result)
        return result

    async def _restore(self, result: HostResult) -> None:
        """After a failed step: discard the new container, start the old one, give Consul its definition back."""
        try:
            await self._discard(self.a.name)
            await self._back_to_old(result)
            if self.a.consul_path and not (self.a.old and result.saved):
                await self.consul.unregister_new()
        except TransportError as lost:  # only a lost connection makes the host unreachable
            result.status = "unreachable"
            result.message += f"; connection lost while restoring the old container: {lost}"
        except PushorchError as again:
            result.message += f"; could not restore the old container: {again}"

    async def _restart(self, result: HostResult) -> HostResult:
        """`pushorch restart`: drain, restart the same container, gate, register. There is no other
        version to go back to: a container that fails its gate stays deregistered and the rollout stops."""
        a = self.a
        try:
            await self._drain(result, a.name)
            await self._container(docker_cmd.restart(a.name, a.stop_timeout), f"restart {a.name}")
            consul_gated = a.gate.kind == "consul" and bool(a.consul_path)
            if consul_gated:
                await self.consul.register(a.name)  # the agent can only check what it knows
            gate = await self._gate(a.name, result)
            if not gate.passed:
                if consul_gated:
                    await self.consul.deregister()  # out of service, as a failed restart leaves it
                result.status = "failed"
                result.message = f"{a.service} {a.version}: gate failed after restart: {gate.why(a.gate)}"
                return result
            if not consul_gated:
                await self.consul.register(a.name)
            await self._route(a.name)
        except TransportError as exc:
            return HostResult("unreachable", str(exc), result.gate_wait, result.saved)
        except PushorchError as exc:
            result.status, result.message = "failed", f"{a.service} {a.version}: restart: {exc}"
        return result

    async def _drain(self, result: HostResult, container: str) -> None:
        """Clients stop picking the old instance: its definition goes (or the agent's maintenance mode
        comes on), then `drain_delay` for clients and load balancers that cached it."""
        a = self.a
        await self._unroute(container)  # the ingress hosts first: no request reaches it from now on
        if a.consul_path and a.drain == "maintenance" and a.consul_reload:
            result.saved = await self.consul.read()
            if not a.held:  # maintenance set by hand stays on: the rollout never ends what it did not start
                reason = f"{consul_cmd.MAINTENANCE_PREFIX}{a.service} {a.old_version} -> {a.version}"
                try:
                    await consul_client.maintenance(self.t, consul_cmd.service_id(a.service, a.host), True, reason)
                    self.consul.in_maintenance = True
                except consul_client.ConsulNotFound:
                    # The agent does not know it (deregistered by hand, an agent that lost its state):
                    # nothing to drain. The soak found the rollout aborting on the agent's 404 instead.
                    self.progress("drain: the Consul agent does not list this instance: nothing to drain")
        elif a.consul_path:
            async with consul_client.definitions(self.t):
                taken = await self._docker(consul_cmd.take_definition(a.consul_path), a.consul_path)
                result.saved = taken.stdout
                await self.consul.reload()
        await self._drain_delay(result)

    async def _drain_delay(self, result: HostResult) -> None:
        if self.a.drain_delay:
            self.progress(f"drain: {self.a.drain_delay:g}s before stopping")
            await asyncio.sleep(self.a.drain_delay)
            result.gate_wait += self.a.drain_delay  # waiting, not pushorch's own time

    async def _stop_first(self, result: HostResult) -> None:
        a = self.a
        if a.old:
            await self._drain(result, a.old[0])
            await self._container(docker_cmd.stop(a.old[0], a.stop_timeout, *a.old[1:]), f"stop {' '.join(a.old)}")
        await self._write_config(result)  # the old container is stopped: nothing reads them now
        gate = await self._start_and_gate(a.name, result)
        if gate is None or not gate.passed:
            await self._discard(a.name)
            await self._back_to_old(result)
            return
        await self.consul.register(a.name)
        await self._route(a.name)
        await self._passed(a.name)
        await kept.retired(self.a, self.t, result.saved_files)

    async def _route(self, name: str) -> None:  # it passed its gate: every ingress sends it requests
        if self.edges:
            await self.edges.route(name)

    async def _unroute(self, name: str) -> None:  # before it stops: no ingress sends it requests
        if self.edges:
            await self.edges.drain(name, self.a.drain_delay or self.a.stop_timeout)

    async def _retire(self) -> None:  # the drained instances stopped: out of every ingress
        if self.edges:
            await self.edges.retire()

    async def _stop_old(self) -> None:
        old = self.a.old
        await self._unroute(old[0])
        await self._container(docker_cmd.stop(old[0], self.a.stop_timeout, *old[1:]), f"stop {' '.join(old)}")
        await self._retire()

    async def _start_first(self, result: HostResult) -> None:
        a = self.a
        await self._write_config(result)
        gate = await self._start_and_gate(a.name, result)
        if gate is None or not gate.passed:
            await self._discard(a.name)  # the old instance never stopped: its files go back
            await self._restore_config(result.saved_files)
            return
        await self.consul.register(a.name)
        await self._route(a.name)
        await self._drain_delay(result)  # clients move to the new port before the old one goes
        await self._stop_old()
        await self._passed(a.name)
        await kept.retired(self.a, self.t, result.saved_files)

    async def revert(self, saved: str, saved_files: tuple[SavedFile, ...] = ()) -> HostResult:
        """Put a host that passed its gate back on its old container (auto_revert), the same gated way."""
        result = HostResult("done", saved=saved, saved_files=saved_files)
        try:
            if self.a.order != "start-first":
                await self._unroute(self.a.name)
                if self.a.consul_path:
                    await self.consul.deregister()
                await self._container(docker_cmd.stop(self.a.name, self.a.stop_timeout), f"stop {self.a.name}")
            await self._back_to_old(result)
            if result.status == "done":
                if self.a.order == "start-first":  # the old one is routed again: the new one drains
                    await self._unroute(self.a.name)
                await self._discard(self.a.name)
                await self._retire()
        except TransportError as exc:
            return HostResult("unreachable", str(exc), result.gate_wait, saved)
        except PushorchError as exc:  # a step failed or timed out: the old container must still come back
            result.status, result.message = "failed", str(exc)
            await self._restore(result)
        return result

    async def _start_and_gate(self, name: str, result: HostResult) -> GateResult | None:
        """Start `name` (run it, or start the kept container) and wait on its gate; None if it did not start."""
        try:
            await self._start(name)
        except (CommandFailed, CommandTimeout) as exc:
            result.status, result.message = "failed", f"{self.a.service} {self.a.version}: did not start: {exc}"
            return None
        if self.a.gate.kind == "consul" and self.a.consul_path:
            await self.consul.register(name)  # the agent can only check what it knows
        gate = await self._gate(name, result)
        if not gate.passed:
            try:  # one round trip: state, ports listened on, health log, last log lines
                done = await self.t.run(diagnosis.script(name), timeout=30, become=self.a.become)
                said = diagnosis.explain(done.stdout, self.a.gate)
            except CommandTimeout:
                said = ["(the host gave no answer to why)"]
            result.status = "failed"
            result.message = f"{self.a.service} {self.a.version}: gate failed: {gate.why(self.a.gate)}; " + "; ".join(
                said
            )
        return gate

    async def _start(self, name: str) -> None:
        a = self.a
        if name != a.name:  # the old one again (a revert): it passed its gate before
            await self._container(docker_cmd.start(name), f"start {name}")
            return
        if not a.argv:  # a kept container as the new one: ungated until it passes, like a fresh one
            await self._container(docker_cmd.start_marked(name), f"start {name}")
            return
        if a.env_file:
            path, content = a.env_file
            await self._docker(system.parent_dir(path, 0o700), path)
            await self.t.put(content.encode(), path, 0o600, become=a.become)
        # A container left under this name by an interrupted run holds the same spec: replace it.
        await self._container(docker_cmd.run_replacing(name, a.argv, a.connect), f"run {name}", timeout=300)

    async def _gate(self, name: str, result: HostResult) -> GateResult:
        gate = self.a.gate
        created = name == self.a.name and bool(self.a.argv)  # by `docker run` just now: restarted 0 times
        prober = self._prober(name, restarts=0 if created else None)
        self.progress(f"gate {name}: {gate.describe()}")
        if not created:
            await prober.state()  # the restart count to compare against
        outcome = await wait_healthy(prober.check, gate, confirm=prober.state)
        result.gate_wait += outcome.waited
        self.progress(f"gate {name}: {'passed' if outcome.passed else 'FAILED'}, {outcome.why(gate)}")
        return outcome

    async def _back_to_old(self, result: HostResult) -> None:
        """Put the old config files back, start the old container again, wait for it, and give Consul its
        old definition back."""
        await self._restore_config(result.saved_files)
        if not self.a.old:
            return
        old = self.a.old[0]
        await self._container(docker_cmd.start(old), f"start {old}")
        # A consul gate asks the agent, which can only check what it knows: register, then wait.
        consul_first = self.a.gate.kind == "consul" and bool(self.a.consul_path and result.saved)
        if consul_first:
            await self.consul.write(await self.consul.ported(result.saved, old))
        back = await self._gate(old, HostResult("done"))
        if not back.passed:
            result.status = "failed"
            result.message += f"; the old container {old} did not come back healthy: {back.why(self.a.gate)}"
        else:
            await self._route(old)
        if self.a.consul_path and result.saved and not consul_first:
            await self.consul.write(await self.consul.ported(result.saved, old))

    async def _save_config(self) -> tuple[SavedFile, ...]:
        return await config_files.save(self.a, self.t, self._snapshot)

    async def _write_config(self, result: HostResult) -> None:
        """The service's config files (saved before the replacement began: what the way back puts back);
        a rollback's are the kept container's, as they were when it was retired."""
        if self._snapshot is not None:
            await self._restore_config(self._snapshot)
            self.progress(f"config as {self.a.snapshot} had it: {', '.join(f.path for f in self._snapshot) or '-'}")
            return
        for f in self.a.files:
            await config_files.put(self.a, self.t, f)
        if self.a.files:
            self.progress(f"config: {', '.join(f.path for f in self.a.files)}")

    async def _read_snapshot(self) -> tuple[SavedFile, ...] | None:
        found = await kept.read_snapshot(self.a, self.t)
        if found is None and self.a.files:
            self.progress(f"no config snapshot of {self.a.snapshot}: its config files stay as they are")
        return found

    async def _restore_config(self, saved: tuple[SavedFile, ...]) -> None:
        await config_files.restore(self.a, self.t, saved)

    async def _passed(self, name: str) -> None:
        """Its ungated mark goes, once the step's work is done (a run stopped before leaves it to be
        gated again), before the retired container's marks (a rollback's hold must outlive it), in
        one command with the step's history record written first (seed 193541 r30: a killed run left a
        change no history named); a record a full disk refuses leaves the mark (docs/reliability.md)."""
        if name != self.a.name or self.a.restart:
            return
        passed = marks.gate_passed(name, self.a.service)
        record = self.record(self.a) if self.record else None
        if record is None:
            await self._docker(passed, "mark it gated")
            return
        append, lines = record
        both = ("sh", "-c", f"if {shell.join(append)}; then {shell.join(passed)}; fi")
        await self._docker(both, "record it and mark it gated", stdin=lines)

    async def _discard(self, name: str) -> None:
        """Take back what this step started: a container it created with `docker run` is removed; one
        it only started again (a kept container a rollback returns to, a restarted one) is stopped,
        never removed: it is somebody's way back."""
        created = bool(self.a.argv) and name == self.a.name
        argv = docker_cmd.remove(name) if created else docker_cmd.stop(name, self.a.stop_timeout)
        await self.t.run(argv, timeout=120, become=self.a.become)

    async def _docker(
        self, argv: tuple[str, ...], what: str, timeout: float = 120, stdin: bytes | None = None
    ) -> Result:
        done = await self.t.run(argv, stdin=stdin, timeout=timeout, become=self.a.become)
        return done.check(f"{self.a.kind}({self.a.service}): {what}")

    async def _container(self, argv: tuple[str, ...], what: str, timeout: float = 120) -> Result:
        """A step that starts or stops a container, ended on the host at its deadline: a late `docker run`
        or `docker stop` finishing after the way back was taken would leave the host in between."""
        limit = time_limit(self.t.settings, timeout)
        done = await self.t.run(shell.bounded(argv, limit), timeout=limit, become=self.a.become)
        if done.exit_status in shell.DEADLINE_STATUSES:
            raise CommandTimeout(self.t.settings.name, timeout_message(argv, limit))
        return done.check(f"{self.a.kind}({self.a.service}): {what}")
