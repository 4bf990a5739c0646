"""Fleet lock builders (pure): an atomic `mkdir` on the lock host, with an owner record and an expiry.

The script's values arrive as positional parameters ($1...), never formatted into its text. Taking
over an expired lock goes through a second `mkdir` (the takeover guard), so two controllers that
both see the lock expired cannot both take it. The host's own clock judges expiry: controllers'
clocks never have to agree.
"""

from __future__ import annotations

from pushorch.commands.shell import Argv

LOCK_DIR = "/var/lib/pushorch/lock"
STATE_FILE = "/var/lib/pushorch/fleet.json"  # what controllers remember between runs (fleetstate.py)

_ACQUIRE = r"""
set -u
d=$1 owner=$2 token=$3 ttl=$4
now=$(date +%s)
take() {
  printf '%s\n' "$owner" > "$d/owner.json" && printf '%s\n' "$token" > "$d/token" &&
  echo $((now + ttl)) > "$d/expires"
}
mkdir -p "${d%/*}" || exit 4
if mkdir "$d" 2>/dev/null; then take && echo ACQUIRED && exit 0; exit 4; fi
# A guard left by a controller that died mid-takeover is stale after a minute.
find "$d.takeover" -maxdepth 0 -mmin +1 -exec rmdir {} \; 2>/dev/null
exp=$(cat "$d/expires" 2>/dev/null || echo 0)
if [ "$now" -ge "${exp:-0}" ] && mkdir "$d.takeover" 2>/dev/null; then
  exp=$(cat "$d/expires" 2>/dev/null || echo 0)
  if [ "$now" -ge "${exp:-0}" ]; then
    echo TAKEN; cat "$d/owner.json" 2>/dev/null; take; rmdir "$d.takeover"; exit 0
  fi
  rmdir "$d.takeover"
fi
echo HELD; cat "$d/owner.json" 2>/dev/null; echo; echo "expires=$exp now=$now"; exit 3
"""

_RENEW = r"""
d=$1 token=$2 ttl=$3
[ "$(cat "$d/token" 2>/dev/null)" = "$token" ] || { echo LOST; cat "$d/owner.json" 2>/dev/null; exit 3; }
echo $(($(date +%s) + ttl)) > "$d/expires.new" && mv "$d/expires.new" "$d/expires" && echo RENEWED
"""

_RELEASE = r"""
d=$1 token=$2
if [ -n "$token" ] && [ "$(cat "$d/token" 2>/dev/null)" != "$token" ]; then echo NOT-OURS; exit 0; fi
rm -rf "$d" && echo RELEASED
"""

_WRITE_STATE = r"""
d=$1 token=$2 f=$3
[ "$(cat "$d/token" 2>/dev/null)" = "$token" ] || { echo LOST; exit 3; }
umask 022
# A write cut short (a full disk) takes its temporary file with it: nothing of pushorch's is left behind.
if cat > "$f.new" && mv -f "$f.new" "$f"; then echo WRITTEN; else s=$?; rm -f "$f.new"; exit "$s"; fi
"""

_STATUS = r"""
d=$1
[ -d "$d" ] || { echo FREE; exit 0; }
echo HELD; cat "$d/owner.json" 2>/dev/null; echo
echo "expires=$(cat "$d/expires" 2>/dev/null || echo 0) now=$(date +%s)"
"""


def acquire(owner_json: str, token: str, ttl: int, directory: str = LOCK_DIR) -> Argv:
    """Exit 0 (ACQUIRED, or TAKEN + the expired owner), 3 (HELD + owner + expiry), 4 (cannot write)."""
    return ("sh", "-c", _ACQUIRE, "pushorch-lock", directory, owner_json, token, str(ttl))


def renew(token: str, ttl: int, directory: str = LOCK_DIR) -> Argv:
    """Exit 0 (RENEWED: the expiry moves on), 3 (LOST + the owner who holds it now)."""
    return ("sh", "-c", _RENEW, "pushorch-lock", directory, token, str(ttl))


def release(token: str = "", directory: str = LOCK_DIR) -> Argv:
    """Remove the lock; with a token, only if it is still ours (an empty token breaks any lock)."""
    return ("sh", "-c", _RELEASE, "pushorch-lock", directory, token)


def status(directory: str = LOCK_DIR) -> Argv:
    return ("sh", "-c", _STATUS, "pushorch-lock", directory)


def write_state(token: str, directory: str = LOCK_DIR, path: str = STATE_FILE) -> Argv:
    """stdin -> the fleet record, only while the lock directory holds `token`: exit 3 (LOST) otherwise."""
    return ("sh", "-c", _WRITE_STATE, "pushorch-lock", directory, token, path)


def read_state(path: str = STATE_FILE) -> Argv:
    """The lock host's clock (epoch seconds), then the fleet record (nothing when there is none)."""
    return ("sh", "-c", 'date +%s; cat -- "$0" 2>/dev/null; exit 0', path)
