"""One host's instance in its Consul agent while it is replaced (execute/replace.py): its definition
written, taken and given back, pointed at a Docker-chosen port, and the agent's maintenance mode ended."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable

from pushorch.actions import ReplaceContainer
from pushorch.commands import system
from pushorch.consul import client as consul_client
from pushorch.consul import commands as consul_cmd
from pushorch.errors import CommandFailed, PushorchError
from pushorch.execute.health import Prober
from pushorch.transport import Transport
from pushorch.transport.base import Result


class Registration:
    """The step's Consul side, over the host's connection."""

    def __init__(
        self,
        action: ReplaceContainer,
        transport: Transport,
        docker: Callable[[tuple[str, ...], str], Awaitable[Result]],
        prober: Callable[[str], Prober],
    ) -> None:
        self.a, self.t, self.docker, self.prober = action, transport, docker, prober
        self.in_maintenance = False  # drained by the agent's maintenance mode, not yet back

    async def unregister_new(self) -> None:
        """No old definition to give back: the new one goes (a file the agent never loaded looks done)."""
        async with consul_client.definitions(self.t):
            await self.docker(system.remove_file(self.a.consul_path), self.a.consul_path)
            with contextlib.suppress(PushorchError):  # the reload may fail as it just did: the file is gone anyway
                await self.reload()

    async def register(self, name: str) -> None:
        if self.a.consul_path:
            await self.write(await self.ported(self.a.consul_content, name))

    async def ported(self, content: str, name: str) -> str:
        """start-first instances have Docker-chosen ports: point the definition at this container's."""
        if self.a.dynamic_port is None:
            return content
        _, container_port = self.a.dynamic_port
        target = await self.prober(name).target(container_port)  # the gate already inspected it
        registered = json.loads(content)["service"].get("port", 0)
        return consul_cmd.with_port(content, registered, target[1])

    async def read(self) -> str:
        if not self.a.consul_path:
            return ""
        done = await self.t.run(("cat", "--", self.a.consul_path), become=self.a.become)
        return done.stdout if done.ok else ""

    async def write(self, content: str) -> None:
        async with consul_client.definitions(self.t):
            try:
                await self.t.put(content.encode(), self.a.consul_path, 0o640, become=self.a.become)
            except CommandFailed:  # the config dir does not exist yet: make it, once
                await self.docker(system.parent_dir(self.a.consul_path), self.a.consul_path)
                await self.t.put(content.encode(), self.a.consul_path, 0o640, become=self.a.become)
            await self.reload()
        if self.in_maintenance:  # registered again (new or old instance): back in service
            await consul_client.maintenance(self.t, consul_cmd.service_id(self.a.service, self.a.host), False)
            self.in_maintenance = False

    async def deregister(self) -> None:
        async with consul_client.definitions(self.t):
            await self.docker(system.remove_file(self.a.consul_path), self.a.consul_path)
            await self.reload()

    async def reload(self) -> None:
        """Only with `consul_client.definitions` held, together with the change it loads."""
        if self.a.consul_reload:
            await consul_client.reload(self.t, self.a.consul_reload == "binary", self.a.become)
