"""Where a service's instances run: rendezvous (highest-random-weight) hashing of (service, host).

Deterministic with no state: every controller computes the same hosts, and losing a host moves
only that host's instances (every other host keeps its score and its rank).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def score(service: str, host: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{service}\0{host}".encode()).digest()[:8], "big")


def place(service: str, hosts: Iterable[str], replicas: int | None) -> list[str]:
    """The hosts that run the service: all of them without replicas, else the top `replicas` by score."""
    candidates = list(dict.fromkeys(hosts))
    if replicas is None:
        return candidates
    ranked = sorted(candidates, key=lambda h: (-score(service, h), h))
    return ranked[:replicas]
