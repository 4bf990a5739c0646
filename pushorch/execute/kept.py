"""What a replacement keeps on its host for the way back (commands/marks.py): a retired container's
config snapshot, a rollback's marks and hold; and the kept containers beyond `keep` it removes."""

from __future__ import annotations

import contextlib

from pushorch.actions import ReplaceContainer
from pushorch.commands import docker as docker_cmd
from pushorch.commands import marks, system
from pushorch.errors import CommandFailed, PushorchError
from pushorch.observed import SavedFile
from pushorch.transport import Transport


async def read_snapshot(action: ReplaceContainer, transport: Transport) -> tuple[SavedFile, ...] | None:
    """The kept container's config files as they were when it was retired; None when it has no
    snapshot (kept before pushorch took them)."""
    done = await transport.run(marks.read_snapshot(action.snapshot), timeout=60, become=action.become)
    done.check(f"{action.kind}({action.service}): read {action.snapshot}'s config")
    return marks.parse_snapshot(done.stdout) if done.stdout.strip() else None


async def retired(action: ReplaceContainer, transport: Transport, saved_files: tuple[SavedFile, ...]) -> None:
    """The old container is retired (stopped, kept): its config files as they were go beside it, for a
    later rollback (best effort: a rollback without its snapshot still runs); a rollback marks what it
    retired (the next rollback goes further back) and writes its hold."""
    a = action
    if not a.old:
        return
    if saved_files:
        data, path = marks.snapshot(saved_files), marks.snapshot_path(a.old[0])
        with contextlib.suppress(CommandFailed):
            try:
                await transport.put(data, path, 0o600, become=a.become)
            except CommandFailed:  # the first one on this host: its directory comes first
                made = await transport.run(system.parent_dir(path, 0o700), timeout=60, become=a.become)
                made.check(f"{a.kind}({a.service}): kept config")
                await transport.put(data, path, 0o600, become=a.become)
    steps = [("mark the container it retired", marks.rolled_back(a.old[0], a.name))] if a.rollback else []
    steps += [(f"hold {a.service} on {a.name}", marks.hold(a.service, a.hold, a.name))] if a.hold else []
    for what, argv in steps:
        done = await transport.run(argv, timeout=60, become=a.become)
        done.check(f"{a.kind}({a.service}): {what}")


async def drop_kept(action: ReplaceContainer, transport: Transport) -> None:
    """After a rollout succeeded: remove kept containers beyond `keep` (and what was kept beside them)."""
    for name in action.drop:
        with contextlib.suppress(PushorchError):  # best effort: the next run's plan removes them
            argv = marks.removing(docker_cmd.remove(name), (name,))
            await transport.run(argv, timeout=120, become=action.become)
