"""A replacement's config files on its host: read as they were (for the way back), written, restored."""

from __future__ import annotations

from pushorch import facts
from pushorch.actions import ReplaceContainer, WriteFile
from pushorch.commands import files as files_cmd
from pushorch.commands import system
from pushorch.errors import CommandFailed
from pushorch.observed import SavedFile
from pushorch.transport import Transport


async def save(
    action: ReplaceContainer, transport: Transport, snapshot: tuple[SavedFile, ...] | None
) -> tuple[SavedFile, ...]:
    """The service's config files as they are (and those a rollback's snapshot writes): bytes, mode
    and owner (or absent)."""
    saved = []
    become = {f.path: f.become for f in action.files}
    for path in dict.fromkeys([*become, *(f.path for f in snapshot or ())]):
        done = await transport.run(files_cmd.read_back(path), timeout=60, become=become.get(path, action.become))
        done.check(f"read {path} to keep it for the way back")
        saved.append(facts.saved_file(path, done.stdout))
    return tuple(saved)


async def restore(action: ReplaceContainer, transport: Transport, saved: tuple[SavedFile, ...]) -> None:
    """Each file back as it was: the same bytes, mode and owner; removed if it did not exist."""
    by_path = {f.path: f for f in action.files}
    for old in saved:
        become = by_path[old.path].become if old.path in by_path else action.become
        if old.data is None:
            await _run(action, transport, system.remove_file(old.path), old.path)
            continue
        await transport.put(old.data, old.path, int(old.mode, 8), become=become)
        await _run(action, transport, ("chown", f"{old.uid}:{old.gid}", "--", old.path), old.path)


async def put(action: ReplaceContainer, transport: Transport, f: WriteFile) -> None:
    """One config file written, its directory made first when it does not exist yet."""
    mode = int(f.mode, 8) if f.mode else 0o644
    try:
        await transport.put(f.content.encode(), f.path, mode, become=f.become)
    except CommandFailed:  # its directory does not exist yet
        await _run(action, transport, system.parent_dir(f.path), f.path)
        await transport.put(f.content.encode(), f.path, mode, become=f.become)
    steps = system.attributes(f.path, None, f.owner, f.group)
    if steps:
        await _run(action, transport, ("sh", "-c", " && ".join(steps)), f.path)


async def _run(action: ReplaceContainer, transport: Transport, argv: tuple[str, ...], what: str) -> None:
    done = await transport.run(argv, timeout=120, become=action.become)
    done.check(f"{action.kind}({action.service}): {what}")
