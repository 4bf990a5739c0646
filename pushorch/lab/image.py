"""The lab host images, built once and cached: debootstrap + `docker import` (no registry, no Dockerfile).

Two images from one debootstrap: `bare` (sshd, no Docker, no Python: for proving the Docker install)
and `full` (+ docker.io, python3 for the Consul stand-in, docker-registry for the lab registry).
The apt mirror is read from this machine's own apt sources; the sources are copied into the image so
lab hosts can install packages as real hosts do.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable
from importlib import resources

from pushorch.lab.shell import LabError, docker, run

SUITE = "bookworm"
BARE_PACKAGES = ["openssh-server", "iproute2", "procps", "ca-certificates"]
# python3-requests: what Ansible's community.docker modules need on a host (bench/peers.py runs them).
FULL_PACKAGES = ["docker.io", "python3", "python3-requests", "docker-registry"]
LABEL = "pushorch.lab=1"
FILES_MOUNT = "/usr/local/lib/pushorch-lab"
ENTRY = f"{FILES_MOUNT}/entry.sh"
STABLE_BARE, STABLE_FULL = "pushorch-lab-host:bare", "pushorch-lab-host:full"
VERSION = "1"  # bump to rebuild cached images when the recipe changes


def image_names() -> tuple[str, str]:
    recipe = "|".join([VERSION, SUITE, *BARE_PACKAGES, *FULL_PACKAGES])
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    return f"pushorch-lab-host:bare-{digest}", f"pushorch-lab-host:full-{digest}"


def files_dir() -> str:
    """The entry point and Consul stand-in, mounted into hosts (so changing them needs no rebuild)."""
    return str(resources.files("pushorch.lab.files"))


# What hosts run from the mounted directory. Named, not listed: an installed package also holds
# __init__.py and a __pycache__ directory there, which hosts never read.
MOUNTED_FILES = ("entry.sh", "consul_standin.py", "consul_store.py", "consul")


def files_digest() -> str:
    """Changes when a file the hosts run changes, so `lab up` recreates them."""
    h = hashlib.sha256()
    for name in MOUNTED_FILES:
        h.update(name.encode() + b"\0" + resources.files("pushorch.lab.files").joinpath(name).read_bytes())
    return h.hexdigest()


def apt_mirror() -> str:
    """The Debian mirror this machine uses, from its own apt sources."""
    texts = []
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))]:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                texts.append(handle.read())
    for text in texts:
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(
            r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M
        ):
            if "security" not in uri:
                return str(uri)
    raise LabError("image: no Debian mirror found in /etc/apt/sources.list*")


def exists(name: str) -> bool:
    return bool(docker("image", "image", "ls", "-q", name).strip())


def ensure_images(say: Callable[[str], None]) -> tuple[str, str]:
    """Build the two host images unless they are cached; returns (bare, full)."""
    bare, full = image_names()
    # Two labs brought up at once (two terminals, a test suite in two processes) build it once: the
    # second waits for the first, then finds the images.
    with open(os.path.join(tempfile.gettempdir(), "pushorch-lab-image.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (exists(bare) and exists(full)):
            _build(bare, full, say)
    # Stable names for tools that cannot compute the digest (vagrant/Vagrantfile uses :full).
    for name, alias in ((bare, STABLE_BARE), (full, STABLE_FULL)):
        docker("image: tag", "tag", name, alias)
    return bare, full


def _build(bare: str, full: str, say: Callable[[str], None]) -> None:
    if os.geteuid() != 0:
        raise LabError("image: building the host image needs root (debootstrap, chroot)")
    with tempfile.TemporaryDirectory(prefix="pushorch-lab-rootfs-") as tmp:
        root = os.path.join(tmp, "rootfs")
        say(f"image: debootstrap {SUITE} (about a minute, once)")
        run(
            "image: debootstrap",
            ["debootstrap", "--variant=minbase", f"--include={','.join(BARE_PACKAGES)}", SUITE, root, apt_mirror()],
            timeout=1800,
        )
        _prepare(root)
        say("image: import bare host image")
        _import(root, bare)
        say(f"image: install {', '.join(FULL_PACKAGES)}")
        _chroot_install(root, FULL_PACKAGES)
        say("image: import full host image")
        _import(root, full)


def _prepare(root: str) -> None:
    """Apt sources of this machine; no services started by apt inside the image."""
    for path in glob.glob("/etc/apt/sources.list.d/*.sources") + glob.glob("/etc/apt/sources.list"):
        if os.path.isfile(path):
            target = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(path, target)
    with open(os.path.join(root, "usr/sbin/policy-rc.d"), "w") as handle:
        handle.write("#!/bin/sh\nexit 101\n")  # apt must not try to start daemons inside the image
    os.chmod(os.path.join(root, "usr/sbin/policy-rc.d"), 0o755)
    # sshd host keys come from the lab (mounted), so no image carries a private key.
    for key in glob.glob(os.path.join(root, "etc/ssh/ssh_host_*")):
        os.remove(key)
    os.makedirs(os.path.join(root, "run/sshd"), exist_ok=True)


def _chroot_install(root: str, packages: list[str]) -> None:
    mounts = [("proc", "proc"), ("sysfs", "sys")]
    for kind, where in mounts:
        run("image: mount", ["mount", "-t", kind, kind, os.path.join(root, where)])
    try:
        env = ["env", "DEBIAN_FRONTEND=noninteractive"]
        run("image: apt-get update", ["chroot", root, *env, "apt-get", "update", "-qq"], timeout=900)
        run(
            "image: apt-get install",
            ["chroot", root, *env, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            timeout=1800,
        )
        run("image: apt-get clean", ["chroot", root, "apt-get", "clean"])
    finally:
        for _, where in reversed(mounts):
            run("image: umount", ["umount", "-l", os.path.join(root, where)], check=False)
    for key in glob.glob(os.path.join(root, "etc/ssh/ssh_host_*")):
        os.remove(key)


def _import(root: str, name: str) -> None:
    """Stream the root filesystem into `docker import` (a pipe: the tar never lands on disk)."""
    tar = shlex.join(["tar", "-C", root, "--numeric-owner", "-c", "."])
    importer = shlex.join(
        ["docker", "import", "--change", f"LABEL {LABEL}", "--change", f'CMD ["/bin/sh", "{ENTRY}"]', "-", name]
    )
    run("image: docker import", ["bash", "-o", "pipefail", "-c", f"{tar} | {importer}"], timeout=900)
