"""A rollout's hooks: commands on the controller before and after it (pre_deploy, post_deploy,
on_abort), their output shown line by line (through the reporter, scrubbed of secrets like all
output), bounded in time. Their environment is the controller's plus the PUSHORCH_* variables
naming the rollout; nothing from the playbooks' secrets is put in it."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

from pushorch.actions import Rollout
from pushorch.events import Event


def environment(rollout: Rollout, result: str = "") -> dict[str, str]:
    steps = [a for batch in rollout.batches for a in batch]
    versions = [a.version for a in steps]
    before = next((a.old_version for a in steps if a.old_version), "")
    return {
        "PUSHORCH_SERVICE": rollout.service,
        "PUSHORCH_VERSION": versions[0] if versions else "",
        "PUSHORCH_FROM_VERSION": before,
        "PUSHORCH_HOSTS": ",".join(rollout.hosts),
        **({"PUSHORCH_RESULT": result} if result else {}),
    }


async def run_hook(rollout: Rollout, kind: str, emit: Callable[[Event], None], result: str = "") -> int | None:
    """Run the rollout's `kind` hook (None when it has none); its exit status (124: out of time)."""
    argv = dict(rollout.hooks).get(kind)
    if not argv:
        return None
    emit(Event("", "progress", None, f"{rollout.service}: hook {kind}: {' '.join(argv)[:120]}"))
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **environment(rollout, result)},
        )
    except OSError as exc:
        emit(Event("", "progress", None, f"{rollout.service}: hook {kind}: cannot run: {exc.strerror or exc}"))
        return 127

    async def lines() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            emit(Event("", "progress", None, f"{rollout.service}: hook {kind}: {text}"))

    try:
        await asyncio.wait_for(asyncio.gather(lines(), process.wait()), rollout.hook_timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        emit(Event("", "progress", None, f"{rollout.service}: hook {kind}: no end after {rollout.hook_timeout:g}s"))
        return 124
    return process.returncode
