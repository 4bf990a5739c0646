"""Builders for file operations on hosts: atomic writes and checksums."""

from __future__ import annotations

import posixpath

from pushorch.commands.shell import Argv, quote, sh


def put(path: str, mode: int, token: str) -> Argv:
    """Write stdin to path atomically: a temp file in the same directory, chmod, then rename.

    The rename is atomic on POSIX filesystems, so a reader sees the old or the new content, never
    a partial file; umask 077 keeps the temp file private until its mode is set.
    """
    directory = posixpath.dirname(path) or "."
    temp = posixpath.join(directory, f".{posixpath.basename(path)}.pushorch-{token}")
    return sh(
        f"umask 077 && cat > {quote(temp)} && chmod {mode:04o} {quote(temp)} && mv -f {quote(temp)} {quote(path)}"
        f" || {{ rc=$?; rm -f {quote(temp)}; exit $rc; }}"
    )


def read_back(path: str) -> Argv:
    """What a revert needs to put `path` back exactly: `absent`, or its mode, uid and gid on one line
    and its bytes in base64 after it. Fails (non-zero) when it exists but cannot be read."""
    return (
        "sh",
        "-c",
        'if [ ! -e "$0" ] && [ ! -L "$0" ]; then echo absent; exit 0; fi; '
        '[ -f "$0" ] || { echo "not a regular file" >&2; exit 4; }; '
        'stat -c "%a %u %g" -- "$0" && base64 < "$0"',
        path,
    )
