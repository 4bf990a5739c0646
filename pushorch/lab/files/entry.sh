#!/bin/sh
# pushorch lab host entry point (PID 1). Without --privileged, /sys and the cgroup mounts are
# read-only: remount them read-write so the host's own dockerd can run containers. Then start
# dockerd (when installed), the Consul stand-in (when python3 is present) and sshd in the foreground.
set -u
mount -o remount,rw /sys 2>/dev/null || true
for m in $(awk '$3 == "cgroup" || $3 == "cgroup2" || $2 == "/sys/fs/cgroup" {print $2}' /proc/self/mounts); do
  mount -o remount,bind,rw "$m" 2>/dev/null || mount -o remount,rw "$m" 2>/dev/null || true
done
if [ -n "${PUSHORCH_LAB_REGISTRY:-}" ]; then
  # Every dockerd on this host (present now or installed later) trusts the lab registry over HTTP.
  mkdir -p /etc/docker
  # A comma-separated list: the open registry and the one that asks for a password.
  registries=$(printf '%s' "$PUSHORCH_LAB_REGISTRY" | sed 's/,/", "/g')
  printf '{"insecure-registries": ["%s"]}\n' "$registries" > /etc/docker/daemon.json
fi
# A host that was killed (docker stop -t 0: a power cut) boots as a real one does, with an empty /run
# (a tmpfs there): a container's /run is not, and the runtime state left in it (pid files, containerd's
# task directories) made dockerd refuse to start those containers again ("failed to start shim: mkdir
# .../moby/ID: file exists": the soak, seed 1 round 24).
rm -rf /run/docker /run/docker.pid /run/containerd /run/sshd.pid
if [ -x /usr/sbin/dockerd ]; then
  dockerd >/var/log/dockerd.log 2>&1 &
fi
here=$(dirname "$0")
if [ -x /usr/bin/python3 ]; then
  mkdir -p /etc/consul.d
  ln -sf "$here/consul" /usr/local/bin/consul
  python3 "$here/consul_standin.py" >/var/log/consul-standin.log 2>&1 &
fi
mkdir -p /run/sshd
# Host key and authorized_keys come from the lab directory on the controller (mounted read-only).
exec /usr/sbin/sshd -D -e -h /etc/ssh/lab/ssh_host_ed25519_key \
  -o "AuthorizedKeysFile /etc/ssh/lab/authorized_keys .ssh/authorized_keys"
