"""Scripts over all of a service's containers on a host, found by label: logs (followed until the
channel's stdin ends), exec in the running one, and pruning stopped containers and unused images."""

from __future__ import annotations

from pushorch.commands.shell import Argv

_LOGS = r"""
svc=$1 follow=$2; shift 2
c=$(docker ps -q --filter "label=pushorch.service=$svc" --filter status=running | head -n 1)
[ -n "$c" ] || { echo "no running container of $svc here" >&2; exit 3; }
[ "$follow" = 1 ] || exec docker logs "$@" "$c" 2>&1
# Follow until the controller goes: its channel closing ends our stdin (sshd signals no root session,
# and a plain sh has no job control). If the log ends first (container gone), a watcher ends us.
docker logs -f "$@" "$c" 2>&1 &
pid=$!
(while kill -0 "$pid" 2>/dev/null; do sleep 1; done; kill -TERM $$ 2>/dev/null) >/dev/null 2>&1 &
cat >/dev/null 2>&1
kill -TERM "$pid" 2>/dev/null
"""


def service_logs(service: str, follow: bool, since: str | None = None, tail: int | None = None) -> Argv:
    """The service's running container's log (its stdout and stderr as one stream). Followed, it runs
    until this command's stdin ends (the SSH channel closing), then ends `docker logs` on the host."""
    options = [*(["--since", since] if since else []), *(["--tail", str(tail)] if tail is not None else [])]
    return ("sh", "-c", _LOGS, "pushorch-logs", service, "1" if follow else "0", *options)


_IN_SERVICE = r"""
svc=$1 tty=$2; shift 2
c=$(docker ps -q --filter "label=pushorch.service=$svc" --filter status=running | head -n 1)
[ -n "$c" ] || { echo "no running container of $svc here" >&2; exit 3; }
if [ "$tty" = 1 ]; then exec docker exec -it "$c" "$@"; fi
exec docker exec "$c" "$@"
"""


def exec_in_service(service: str, argv: tuple[str, ...], tty: bool = False) -> Argv:
    """`docker exec` in the service's running container on this host (exit 3 when none runs here);
    `tty`: interactive, on the SSH session's pseudo-terminal."""
    return ("sh", "-c", _IN_SERVICE, "pushorch-exec", service, "1" if tty else "0", *argv)


_PRUNE = r"""
svc=$1 keep=$2 repo=$3 keep_images=$4 dry=$5
say() { if [ "$dry" = 1 ]; then echo "would remove $1 $2"; else echo "removed $1 $2"; fi; }
# One `docker inspect` for every container (a docker call per container cost a second on a busy host):
# "FINISHED STATUS IMAGE-ID NAME SERVICE-LABEL" per line.
info="" gone=""
ids=$(docker ps -aq)
[ -z "$ids" ] || info=$(docker inspect --format \
  '{{.State.FinishedAt}} {{.State.Status}} {{.Image}} {{.Name}} {{index .Config.Labels "pushorch.service"}}' $ids)
# Stopped containers of the service beyond `keep`, the most recently stopped kept (pushorch's own only).
if [ "$keep" -ge 0 ] && [ -n "$info" ]; then
  for name in $(printf '%s\n' "$info" | awk -v svc="$svc" '$2 == "exited" && $5 == svc' | sort -r |
      awk '{ sub(/^\//, "", $4); print $4 }' | tail -n +$((keep + 1))); do
    gone="$gone $name"; say container "$name"
    [ "$dry" = 1 ] || docker rm -f "$name" >/dev/null
  done
fi
[ -n "$repo" ] || exit 0
# Images of the service's repository no container uses (the ones above excepted), beyond the newest keep_images.
used=$(printf '%s\n' "$info" | while read -r _ _ image name _; do
  case " $gone " in *" ${name#/} "*) ;; *) printf '%s ' "$image";; esac
done)
docker images --no-trunc --format '{{.ID}} {{.Repository}}:{{.Tag}}' "$repo" | tail -n +$((keep_images + 1)) |
while read -r id ref; do
  case " $used " in *" $id "*) continue;; esac
  case "$ref" in *:"<none>") ref=$id;; esac
  say image "$ref"
  [ "$dry" = 1 ] || docker rmi "$ref" >/dev/null
done
"""


def prune(service: str, keep: int, repository: str, keep_images: int, dry_run: bool = False) -> Argv:
    """Remove the service's stopped containers beyond `keep` (keep -1: leave containers alone) and its
    repository's images no container uses beyond the newest `keep_images`; one line per thing removed
    (`removed image REF`, or with dry_run `would remove image REF`, which is exactly what a run removes)."""
    return (
        "sh",
        "-c",
        _PRUNE,
        "pushorch-prune",
        service,
        str(keep),
        repository,
        str(keep_images),
        "1" if dry_run else "0",
    )
