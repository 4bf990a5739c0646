"""The labels pushorch puts on every container it creates (the hosts are the database), and digests."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable

MANAGED = "pushorch.service"
SPEC_HASH = "pushorch.spec-hash"
VERSION = "pushorch.version"
PLAYBOOK = "pushorch.playbook"
SHAPE = "pushorch.shape"  # the fields a replacement is explained by, as JSON
CONSUL_FILE = "pushorch.consul-file"
NETWORK = "pushorch.network"  # on a network pushorch created: its name
JOBS = "pushorch.jobs"  # on a service's container: the job digest its jobs ran for (commands/docker.job_digest)
REPLACES = "pushorch.replaces"  # on an instance started because its host was lost: that host


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def owned_by(label: str | None, owners: Iterable[str]) -> bool:
    """An owner label (a container's, a network's, a KV manifest's) is one of `owners` (load/owner.py).
    A basename label, written before owners were paths, matches a playbook of that basename: an
    upgrade removes nothing and adopts nothing by itself."""
    if not label:
        return False
    return any(label == o or ("/" not in label and posixpath.basename(o) == label) for o in owners)
