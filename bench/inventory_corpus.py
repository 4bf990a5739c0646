"""pushorch inventory --list vs ansible-inventory --list over a corpus of inventory files.

    python -m bench.inventory_corpus DIR [DIR...]

Each candidate (files named inventory*, hosts*, *.ini, *.toml, and *.yml/*.yaml whose top level looks
like an inventory) is read by both from its own directory. A case is `same` when both print the
same document, `refused by both` when both refuse it (ansible-inventory refuses a source by
warning "Unable to parse" and going on without it; pushorch exits 3), and `differs` otherwise.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

NAMES = re.compile(r"^(inventory|hosts)([._-].*)?$|\.(ini|toml)$", re.IGNORECASE)
SKIP_DIRS = {"library", "tasks", "templates", "files", "handlers", "meta", "defaults", "roles", "filter_plugins"}


def _looks_like_yaml_inventory(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:
        return False
    if not isinstance(data, dict) or not data or "plugin" in data:
        return False
    return all(isinstance(v, dict) and set(v) & {"hosts", "children", "vars"} for v in data.values() if v is not None)


def candidates(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or set(path.relative_to(root).parts[:-1]) & SKIP_DIRS or path.suffix in (".py", ".sh"):
            continue
        if NAMES.search(path.name) or (path.suffix in (".yml", ".yaml") and _looks_like_yaml_inventory(path)):
            found.append(path)
    return found


def _run(argv: list[str], cwd: Path, home: str) -> tuple[int, str, str]:
    env = {**os.environ, "ANSIBLE_HOME": home, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "1"}
    env.pop("ANSIBLE_CONFIG", None)
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return 124, "", ""
    return done.returncode, done.stdout, done.stderr


def main(roots: list[str]) -> int:
    bindir = Path(sys.executable).parent
    same = refused = 0
    differs: list[str] = []
    with tempfile.TemporaryDirectory() as home:
        paths = [p for root in roots for p in candidates(Path(root))]
        for path in paths:
            theirs = _run([str(bindir / "ansible-inventory"), "-i", path.name, "--list"], path.parent, home)
            ours = _run([sys.executable, "-m", "pushorch", "inventory", "-i", path.name, "--list"], path.parent, home)
            # ansible-inventory "refuses" a source by warning it could not parse it and going on without it.
            theirs_refused = theirs[0] != 0 or "Unable to parse" in theirs[2]
            if not theirs_refused and ours[:2] == theirs[:2]:
                same += 1
            elif theirs_refused and ours[0] != 0:
                refused += 1
            else:
                differs.append(f"{path} (ansible-inventory exit {theirs[0]}, pushorch exit {ours[0]})")
    print(f"{len(paths)} inventories: {same} same, {refused} refused by both, {len(differs)} differ")
    for line in differs:
        print("  differs:", line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
