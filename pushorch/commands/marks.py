"""What pushorch keeps on a host beside its containers, under /var/lib/pushorch (builders; pure):

- `ungated/NAME`: a container a replacement started and no gate has passed yet (an interrupted run's);
- `kept/NAME.json`: a kept container's config files as they were when it was retired (0600: they may
  hold secrets), so `rollback` puts back its whole spec, not the current files;
- `kept/NAME.rolled-back`: a container a rollback retired: the next plain `rollback` goes further back,
  not back to it;
- `images`: every image reference pushorch pulled or shipped, a line each: `prune` removes no image
  that is not listed (an older `postgres:15` the host's own cron uses is the host's);
- `owners/SERVICE`: the playbook (load/owner.py) that owns the service's containers on this host when
  it is not the one on their labels: a service moved to another playbook is adopted, and a `--prune`
  of the playbook it left does not remove it;
- `hold/SERVICE`: `rollback --hold`: "DIGEST NAME", the playbook's spec hash the hold refuses and the
  kept container it holds to. `apply`/`reconcile` leave the service alone while the playbook still says
  DIGEST; a changed playbook (a new version) or `rollback --release` ends it;
- `consul-reload-pending`: a reload of the Consul agent failed (it answered 500, say) after a definition
  was written: the file looks done, but the agent never loaded it; the next run reloads.

The probe reads them with shell globs and `read` (no fork per file).
"""

from __future__ import annotations

import base64
import json

from pushorch.commands.shell import Argv, join
from pushorch.observed import SavedFile

ROOT = "/var/lib/pushorch"
UNGATED_DIR = f"{ROOT}/ungated"
KEPT_DIR = f"{ROOT}/kept"
HOLD_DIR = f"{ROOT}/hold"
OWNERS_DIR = f"{ROOT}/owners"
RELOAD_PENDING = f"{ROOT}/consul-reload-pending"
PULLED_FILE = f"{ROOT}/images"  # every image reference pushorch pulled or shipped: prune removes no other


def probe_lines(mark: str) -> list[str]:
    """The probe's lines: `ungated`, `rolledback`, `holds` and `owners` sections (each a glob, no
    fork), each headed by `mark` (the probe's section marker, a format with one `{}`)."""
    return [
        f"echo '{mark.format('ungated')}'",
        f'for f in {UNGATED_DIR}/*; do [ -e "$f" ] && echo "${{f##*/}}"; done',
        f"echo '{mark.format('rolledback')}'",
        f'for f in {KEPT_DIR}/*.rolled-back; do [ -e "$f" ] && {{ f=${{f##*/}}; echo "${{f%.rolled-back}}"; }}; done',
        f"echo '{mark.format('holds')}'",
        f'for f in {HOLD_DIR}/*; do [ -e "$f" ] && {{ read -r h < "$f"; echo "${{f##*/}} $h"; }}; done',
        f"echo '{mark.format('owners')}'",
        f'for f in {OWNERS_DIR}/*; do [ -e "$f" ] && {{ read -r o < "$f"; echo "${{f##*/}} $o"; }}; done',
        f"echo '{mark.format('reload')}'",
        f"if [ -e {RELOAD_PENDING} ]; then echo pending; fi",
    ]


def fetched(fetch: Argv, image: str) -> Argv:
    """`fetch` (docker pull, docker load), then `image` listed as pushorch's (best effort: a login that
    cannot write the list leaves the image to the host: prune will not remove it)."""
    record = '{ mkdir -p "${1%/*}" && { grep -qsxF "$0" "$1" || echo "$0" >> "$1"; }; } 2>/dev/null || true'
    return ("sh", "-c", f"{join(fetch)} && {{ {record}; }}", image, PULLED_FILE)


def reload_failed() -> Argv:
    """Remember that the agent has not loaded what its directory holds (best effort)."""
    return ("sh", "-c", f"mkdir -p {ROOT} && : > {RELOAD_PENDING}")


def reload_done() -> Argv:
    return ("rm", "-f", "--", RELOAD_PENDING)


def gate_passed(name: str, service: str) -> Argv:
    """The container passed its gate: it serves (its ungated mark goes), and a hold on its service ends
    (a new version was applied)."""
    return ("rm", "-f", "--", f"{UNGATED_DIR}/{name}", f"{HOLD_DIR}/{service}")


def snapshot_path(name: str) -> str:
    return f"{KEPT_DIR}/{name}.json"


def snapshot(files: tuple[SavedFile, ...]) -> bytes:
    """A kept container's config files, as `snapshot_path` holds them."""
    return json.dumps(
        [
            {
                "path": f.path,
                "data": None if f.data is None else base64.b64encode(f.data).decode(),
                "mode": f.mode,
                "uid": f.uid,
                "gid": f.gid,
            }
            for f in files
        ]
    ).encode()


def parse_snapshot(text: str) -> tuple[SavedFile, ...]:
    """`snapshot`'s bytes back; raises ValueError when they are not one."""
    try:
        entries = json.loads(text)
        return tuple(
            SavedFile(
                str(e["path"]),
                None if e["data"] is None else base64.b64decode(e["data"], validate=True),
                str(e["mode"]),
                str(e["uid"]),
                str(e["gid"]),
            )
            for e in entries
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a config snapshot: {exc}") from None


def read_snapshot(name: str) -> Argv:
    """The snapshot, or nothing (exit 0) when there is none (a container kept before snapshots)."""
    return ("sh", "-c", '[ -e "$0" ] || exit 0; cat -- "$0"', snapshot_path(name))


def rolled_back(retired: str, target: str) -> Argv:
    """A rollback retired `retired` for `target`: the next plain rollback skips `retired`, and may go
    back to `target` again."""
    script = 'mkdir -p "$0" && : > "$0/$1.rolled-back" && rm -f -- "$0/$2.rolled-back"'
    return ("sh", "-c", script, KEPT_DIR, retired, target)


def forget(names: tuple[str, ...]) -> Argv:
    """A kept container removed: its snapshot and marks go with it."""
    paths = [p for n in names for p in (snapshot_path(n), f"{KEPT_DIR}/{n}.rolled-back", f"{UNGATED_DIR}/{n}")]
    return ("rm", "-f", "--", *paths)


def removing(remove: Argv, names: tuple[str, ...]) -> Argv:
    """`remove` (docker rm), then what was kept beside the containers, in one round trip."""
    return ("sh", "-c", f"{join(remove)} && {join(forget(names))}")


def hold(service: str, digest: str, name: str) -> Argv:
    return ("sh", "-c", 'mkdir -p "$0" && printf "%s %s\\n" "$2" "$3" > "$0/$1"', HOLD_DIR, service, digest, name)


def adopt(service: str, owner: str) -> Argv:
    return ("sh", "-c", 'mkdir -p "$0" && printf "%s\\n" "$2" > "$0/$1"', OWNERS_DIR, service, owner)


def release(service: str) -> Argv:
    return ("rm", "-f", "--", f"{HOLD_DIR}/{service}")
