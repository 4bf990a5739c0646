"""The runtime: run a Plan over the hosts' transports (hosts.py), a service's rollout batch by batch
(batches.py), one host's replacement (replace.py) and one health gate (health.py)."""

from pushorch.execute.hosts import Executed, execute

__all__ = ["Executed", "execute"]
