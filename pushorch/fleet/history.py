"""Deploy history: every change a run makes to a host's services is appended to that host's own
`/var/lib/pushorch/history.jsonl` (the hosts are the database), and `pushorch history` reads it
back from every host, merged by time.

One JSON line per change: time (UTC), host, service, action (start, replace, restart, recreate,
remove, revert), from and to versions, result (changed, failed, reverted, unreachable), reason,
who (user@controller) and the command line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from pushorch.actions import RemoveContainer, ReplaceContainer, RestartContainer, StopContainer
from pushorch.commands.shell import Argv
from pushorch.events import Event

HISTORY_FILE = "/var/lib/pushorch/history.jsonl"
# Past this size the file becomes history.jsonl.1 (the one before goes): two generations, like
# logrotate's `rotate 1`, at most ~2 MiB per host; `pushorch history` reads both.
ROTATE_BYTES = 1024 * 1024

# Rotate when large; drop a line a cut write left unfinished (a full disk: it would swallow the next
# record, and it is no record), or end it when that cannot be rewritten; then append in one write
# (read whole first: `cat >>` may split a stream into several writes).
_APPEND = r"""f=$0 limit=$1
records=$(cat; echo .) && records=${records%.}
mkdir -p "${f%/*}" || exit
size=$(stat -c %s "$f" 2>/dev/null || echo 0)
[ "$size" -gt "$limit" ] && mv -f "$f" "$f.1"
[ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ] && { sed -i '$d' "$f" 2>/dev/null || printf '\n' >> "$f"; }
printf '%s' "$records" >> "$f"
"""
FIELDS = ("time", "host", "service", "action", "from", "to", "result", "reason", "by", "command")


def records(events: Iterable[Event], by: str, command: str) -> dict[str, list[dict[str, str]]]:
    """host -> the history lines for the service changes among `events` (in the order they happened)."""
    out: dict[str, list[dict[str, str]]] = {}
    for event in events:
        action = event.action
        if event.status not in ("changed", "failed", "reverted", "unreachable") or action is None:
            continue
        if isinstance(action, ReplaceContainer):
            before, after, verb = action.old_version, action.version, action.shown_verb
            if event.status == "reverted":
                before, after, verb = action.version, action.old_version, "revert"
        elif isinstance(action, RestartContainer):
            before = after = action.version
            verb = action.shown_verb
        elif isinstance(action, (RemoveContainer, StopContainer)):
            before = after = ""
            verb = action.shown_verb
        else:
            continue
        out.setdefault(event.host, []).append(
            {
                "time": datetime.fromtimestamp(event.at, UTC).isoformat(timespec="milliseconds"),
                "host": event.host,
                "service": action.service,
                "action": verb,
                "from": before,
                "to": after,
                "result": "changed" if event.status == "reverted" else event.status,
                "reason": action.reason if event.status != "failed" else f"{action.reason}: {event.message}"[:500],
                "by": by,
                "command": command,
            }
        )
    return out


def append(lines: list[dict[str, str]], limit: int = ROTATE_BYTES, path: str = HISTORY_FILE) -> tuple[Argv, bytes]:
    """The command that appends `lines` on the host (rotating the file past `limit` bytes), and its stdin."""
    records = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines).encode()
    return ("sh", "-c", _APPEND, path, str(limit)), records


def read(path: str = HISTORY_FILE) -> Argv:
    """Both generations, the older first."""
    return ("sh", "-c", 'cat -- "$0.1" "$0" 2>/dev/null; exit 0', path)


def parse(host: str, text: str) -> list[dict[str, str]]:
    """A host's history lines (a damaged line is skipped, not fatal)."""
    out = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            out.append({key: str(data.get(key, "")) for key in FIELDS} | {"host": str(data.get("host") or host)})
    return out
