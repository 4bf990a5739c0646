"""Scripts over all of a service's containers on a host, found by label: logs (followed until the
channel's stdin ends), exec in the running one, and pruning stopped containers and unused images."""

from __future__ import annotations

from pushorch.commands import marks
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
dry=$0 pulled=$1 services=$2 repos=$3
say() { if [ "$dry" = 1 ]; then echo "would remove $1 $2"; else echo "removed $1 $2"; fi; }
# One `docker inspect` for every container (a docker call per container cost a second on a busy host):
# "FINISHED STATUS IMAGE-ID NAME SERVICE-LABEL" per line.
info="" gone=""
ids=$(docker ps -aq)
[ -z "$ids" ] || info=$(docker inspect --format \
  '{{.State.FinishedAt}} {{.State.Status}} {{.Image}} {{.Name}} {{index .Config.Labels "pushorch.service"}}' $ids)
# Each service's stopped containers of another spec than the playbook's ("SERVICE KEEP CURRENT" lines),
# beyond `keep`, the most recently stopped kept: the planner's rule (a hand-stopped current one is
# not a kept version). pushorch's own only (its label).
for name in $(printf '%s\n' "$services" | while read -r svc keep current; do
    [ -n "$svc" ] && [ -n "$info" ] || continue
    printf '%s\n' "$info" | awk -v svc="$svc" -v cur="/$current" '$2 == "exited" && $5 == svc && $4 != cur' |
      sort -r | awk '{ sub(/^\//, "", $4); print $4 }' | tail -n +$((keep + 1))
  done); do
  gone="$gone $name"; say container "$name"
  [ "$dry" = 1 ] || docker rm -f "$name" >/dev/null
done
[ -n "$repos" ] || exit 0
# Images of the repositories ("REPOSITORY KEEP_IMAGES" lines) no container uses (the ones above
# excepted), beyond the newest keep_images, and only images pushorch pulled or shipped (listed in
# $pulled; an untagged one of such a repository is a pulled tag's older image): never one of the
# host's own, even of the same repository.
used=$(printf '%s\n' "$info" | while read -r _ _ image name _; do
  case " $gone " in *" ${name#/} "*) ;; *) printf '%s ' "$image";; esac
done)
printf '%s\n' "$repos" | while read -r repo keep_images; do
  [ -n "$repo" ] || continue
  docker images --no-trunc --format '{{.ID}} {{.Repository}}:{{.Tag}}' "$repo" | tail -n +$((keep_images + 1)) |
  while read -r id ref; do
    case " $used " in *" $id "*) continue;; esac
    case "$ref" in
      *:"<none>") grep -qs "^${ref%:<none>}:" "$pulled" || continue; ref=$id;;
      *) grep -qsxF "$ref" "$pulled" || continue;;
    esac
    say image "$ref"
    [ "$dry" = 1 ] || docker rmi "$ref" >/dev/null
  done
done
"""


def prune(services: list[tuple[str, int, str]], repositories: list[tuple[str, int]], dry_run: bool = False) -> Argv:
    """One host's prune, in one script so a dry run sees what the whole run removes: each (service,
    keep, its current container's name)'s stopped containers of other specs beyond `keep`, then each
    (repository, keep_images)'s images that no container left uses, beyond the newest `keep_images`,
    that pushorch pulled or shipped. One line per thing removed (`removed image REF`, or with dry_run
    `would remove image REF`, which is exactly what a run removes)."""
    kept: dict[str, int] = {}
    for repository, keep_images in repositories:  # services sharing a repository: the larger keep wins
        kept[repository] = max(keep_images, kept.get(repository, 0))
    return (
        "sh",
        "-c",
        _PRUNE,
        "1" if dry_run else "0",
        marks.PULLED_FILE,
        "".join(f"{s} {keep} {current}\n" for s, keep, current in services),
        "".join(f"{r} {k}\n" for r, k in kept.items()),
    )
