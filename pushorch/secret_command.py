"""`!secret_cmd COMMAND`: a secret from any controller command's stdout (1Password's `op read`, `pass`,
`bw get`, `vault kv get -field`...), run without a shell, bounded in time, its stderr never shown."""

from __future__ import annotations

import shlex
import subprocess

TIMEOUT = 30.0
MAX_BYTES = 1024 * 1024


def run(command: str) -> tuple[str | None, str]:
    """(the secret, "") or (None, why it could not be had)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return None, str(exc)
    if not argv:
        return None, "no command given"
    try:
        done = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return None, f"{argv[0]}: command not found"
    except PermissionError:
        return None, f"{argv[0]}: permission denied"
    except subprocess.TimeoutExpired:
        return None, f"{argv[0]} gave no answer within {TIMEOUT:g}s"
    if done.returncode != 0:
        # stderr may echo what was asked for, or the secret itself: say only how much there was.
        withheld = f"; its stderr ({len(done.stderr)} bytes) is not shown" if done.stderr else ""
        return None, f"{argv[0]} exited {done.returncode}{withheld}"
    if len(done.stdout) > MAX_BYTES:
        return None, f"{argv[0]} printed more than {MAX_BYTES} bytes"
    return done.stdout.decode("utf-8", "replace").removesuffix("\n"), ""
