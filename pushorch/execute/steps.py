"""One host action on one host: a handler per action kind (the closed set in actions.py)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess

from pushorch import actions as a
from pushorch.commands import docker as docker_cmd
from pushorch.commands import haproxy, marks, system
from pushorch.consul import client as consul_client
from pushorch.errors import CommandFailed, PushorchError
from pushorch.secret import Secret
from pushorch.transport import Transport


async def run_action(action: a.Action, t: Transport) -> None:
    """Run one host action (rollout steps are run by batches.py/replace.py, not here)."""
    match action:
        case a.InstallDocker():
            await _run(t, action, system.install_packages(action.package_manager, action.packages), "docker", 900)
        case a.InstallIngress():
            await _run(t, action, system.install_packages(action.package_manager, action.packages), "ingress", 900)
        case a.ConfigureIngress():
            await _configure_ingress(action, t)
        case a.StartDocker():
            await _run(t, action, system.start_docker(action.systemd), "docker", 120)
        case a.WriteFile():
            await _write_file(action, t)
        case a.EnsurePath():
            argv = system.ensure_path(action.path, action.state, action.mode, action.owner, action.group)
            await _run(t, action, argv, action.path)
        case a.RunCommand():
            await _run_command(action, t)
        case a.PullImage():
            await _pull(action, t)
        case a.ShipImage():
            await _ship(action, t)
        case a.RestartContainer():
            await _run(t, action, docker_cmd.start_again(action.name), action.name)
        case a.StopContainer():
            await _run(t, action, docker_cmd.stop(action.name, action.stop_timeout), action.name, 120)
        case a.RemoveContainer():
            await _run(t, action, marks.removing(docker_cmd.remove(action.name), (action.name,)), action.name, 120)
        case a.WriteConsul():
            async with consul_client.definitions(t):
                await _run(t, action, system.parent_dir(action.path), action.path)
                await t.put(action.content.encode(), action.path, 0o640, become=action.become)
        case a.RemoveConsul():
            async with consul_client.definitions(t):
                await _run(t, action, system.remove_file(action.path), action.path)
        case a.CreateNetwork():
            argv = docker_cmd.network_create(
                action.name, action.driver, action.internal, dict(action.labels), action.subnet, action.gateway
            )
            await _run(t, action, argv, action.name)
        case a.RemoveNetwork():
            await _run(t, action, docker_cmd.network_remove(action.name), action.name)
        case a.WriteKv():
            value = action.value.reveal() if isinstance(action.value, Secret) else action.value
            if not await consul_client.kv_put(t, action.key, value.encode(), action.cas, action.flags):
                raise consul_client.ConsulError(t.settings.name, _changed_since(action.key))
        case a.DeleteKv():
            if not await consul_client.kv_delete(t, action.key, action.cas):
                raise consul_client.ConsulError(t.settings.name, _changed_since(action.key))
        case a.AdoptService():
            await _run(t, action, marks.adopt(action.service, action.owner), action.service)
        case a.EndMaintenance():
            await consul_client.maintenance(t, action.service_id, False)
        case a.ReloadConsul():
            await _reload_consul(action, t)
        case _:
            raise TypeError(f"no handler for {action.kind}")


async def _reload_consul(action: a.ReloadConsul, t: Transport) -> None:
    """Reload: the agent validates what it loads. When it refuses, the definitions this run wrote go
    again: the agent never loaded them, and a file left in place would look done to the next run's plan."""
    async with consul_client.definitions(t):
        try:
            await consul_client.reload(t, action.binary, action.become)
        except PushorchError:
            if action.written:
                with contextlib.suppress(PushorchError):
                    await t.run(system.remove_file(*action.written), timeout=30, become=action.become)
            raise
    if action.pending:
        await _run(t, action, marks.reload_done(), "consul reload")


async def _configure_ingress(action: a.ConfigureIngress, t: Transport) -> None:
    """This run's fragments beside the host's others, the certificates (0600), then the whole checked
    and loaded (commands/haproxy.py)."""
    await _run(t, action, haproxy.prepare(action.services, action.pruned), haproxy.FRAGMENTS)
    for path, bundle in action.certificates:
        await t.put(bundle.reveal().encode(), path, 0o600, become=action.become)
    for name, content in action.fragments:
        await t.put(content.encode(), f"{haproxy.STAGING}/{name}", 0o644, become=action.become)
    await _run(t, action, haproxy.assemble(action.systemd), haproxy.CONFIG, 60)


def _changed_since(key: str) -> str:
    return (
        f"consul kv {key}: changed by someone else since this run read it (check-and-set); the next run decides again"
    )


async def _run(t: Transport, action: a.Action, argv: tuple[str, ...], what: str, timeout: float | None = None) -> None:
    result = await t.run(argv, become=action.become, timeout=timeout)
    result.check(f"{action.kind}({what})")


async def _write_file(action: a.WriteFile, t: Transport) -> None:
    mode = int(action.mode, 8) if action.mode else 0o644
    await t.put(action.content.encode(), action.path, mode, become=action.become)
    steps = system.attributes(action.path, None, action.owner, action.group)
    if steps:
        await _run(t, action, ("sh", "-c", " && ".join(steps)), action.path)


async def _run_command(action: a.RunCommand, t: Transport) -> None:
    argv = action.argv
    if action.chdir:
        argv = ("sh", "-c", 'cd "$0" && exec "$@"', action.chdir, *argv)
    await _run(t, action, argv, " ".join(action.argv)[:60], 600)


async def _pull(action: a.PullImage, t: Transport) -> None:
    if action.username and action.password is not None:
        login = docker_cmd.login(action.registry or "", action.username)
        result = await t.run(login, stdin=action.password.reveal().encode(), become=action.become)
        result.check(f"PullImage({action.image}): docker login {action.registry}")
    await _run(t, action, marks.fetched(docker_cmd.pull(action.image), action.image), action.image, 900)


async def _ship(action: a.ShipImage, t: Transport) -> None:
    """docker save on the controller, gzip, then docker load on the host through the SSH connection."""

    def save() -> bytes:
        done = subprocess.run(["sh", "-c", 'docker save "$0" | gzip -1', action.image], capture_output=True)
        if done.returncode != 0:
            raise CommandFailed("controller", f"ShipImage({action.image})", done.returncode, done.stderr.decode())
        return done.stdout

    data = await asyncio.to_thread(save)
    result = await t.run(marks.fetched(docker_cmd.load(), action.image), stdin=data, become=action.become, timeout=900)
    result.check(f"ShipImage({action.image})")
