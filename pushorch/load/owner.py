"""Which playbook owns what pushorch creates: a stable identity, not the file's basename.

`/srv/a/site.yml` and `/srv/b/site.yml` were one owner (a `--prune` of one removed the other's
containers, networks and KV keys). A playbook's owner is its path from the root of the repository
it lives in (the nearest directory holding `.git`), the same on every clone (a laptop, the ops box's
cron); outside a repository, its absolute path. Labels written before this carry the basename: they
still match a playbook of that basename (`planner.labels.owned_by`), so an upgrade removes nothing and adopts
nothing by itself.
"""

from __future__ import annotations

import os


def owner(path: str) -> str:
    """The owner identity of the playbook at `path`."""
    absolute = os.path.abspath(path)
    root = repository_root(absolute)
    return os.path.relpath(absolute, root).replace(os.sep, "/") if root else absolute


def repository_root(path: str) -> str | None:
    """The nearest directory above `path` that holds `.git`, or None."""
    directory = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.exists(os.path.join(directory, ".git")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
