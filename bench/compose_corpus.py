"""pushorch's reading of compose files vs docker-compose's (`docker-compose config`) over a corpus.

    python -m bench.compose_corpus DIR [DIR...] [--verbose]

Candidates: every compose file (`compose.yaml`, `docker-compose.yml`, ...) under the directories, and
every fenced YAML example with `services:` in their Markdown files (the compose-spec's examples),
written to a directory of its own. Each is read by the reference (`docker-compose config`, run in its
directory with no environment but `.env`) and checked against the compose-spec JSON schema as the
docker-compose package ships it (`jsonschema`); pushorch loads it (`--hosts all`, one host). A case is
- `same`: pushorch loads it to the services the reference prints (image, command, entrypoint,
  environment, ports, mount targets, healthcheck test, restart, depends_on, replicas);
- `refused`: pushorch exits 3 and names what it does not map (counted by message);
- `refused by both`: the reference refuses it too;
- `differs`: anything else — a mapping bug, listed with the first difference.
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pushorch.errors import InputError
from pushorch.load import compose_ports
from pushorch.load.context import ComposeOptions, LoadContext
from pushorch.load.playbooks import load_spec

NAMES = {"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}
SCHEMA = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")
_FENCE = re.compile(r"^```ya?ml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def candidates(roots: list[Path], scratch: Path) -> list[Path]:
    """The compose files under the roots, and each Markdown example written out as one."""
    found = [p for root in roots for p in sorted(root.rglob("*")) if p.is_file() and p.name in NAMES]
    for r, root in enumerate(roots):
        for md in sorted(root.rglob("*.md")):
            for n, block in enumerate(_FENCE.findall(md.read_text(encoding="utf-8", errors="replace"))):
                try:
                    data = yaml.safe_load(block)
                except yaml.YAMLError:
                    continue
                if isinstance(data, dict) and isinstance(data.get("services"), dict):
                    where = scratch / f"{r}-{md.relative_to(root).as_posix().replace('/', '_')}-{n}"
                    where.mkdir(parents=True)
                    (where / "compose.yaml").write_text(block)
                    found.append(where / "compose.yaml")
    return found


def reference(path: Path) -> dict[str, Any] | None:
    """`docker-compose config` of the file, from its directory with an empty environment; None: refused."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    try:
        done = subprocess.run(
            ["docker-compose", "-f", path.name, "config"], cwd=path.parent, env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    return yaml.safe_load(done.stdout) if done.returncode == 0 else None


def schema_valid(path: Path) -> bool:
    import json

    import jsonschema  # type: ignore[import-untyped]

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    except (jsonschema.ValidationError, yaml.YAMLError):
        return False
    return True


def ours(path: Path, inventory: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """pushorch's services of the file, or the messages it refused it with."""
    context = LoadContext(compose=ComposeOptions(environ={}, hosts="all"))
    try:
        _, spec = load_spec([str(inventory)], [str(path)], context=context)
    except InputError as exc:
        return None, [p.message for p in exc.problems]
    host = spec.hosts.get("h1")  # none: no service runs (every one behind a profile)
    services = {s.name: s for play in (host.plays if host else ()) for s in play.services}
    return services, []


def _words(value: Any) -> list[str] | None:
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(x) for x in value]


def _dollars(value: Any) -> Any:
    """`docker-compose config` prints a literal dollar as `$$` again (it is input to compose)."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [_dollars(v) for v in value]
    if isinstance(value, dict):
        return {k: _dollars(v) for k, v in value.items()}
    return value


def _ports(given: list[Any]) -> set[tuple[Any, int, str]]:
    out = set()
    for item in given or []:
        if isinstance(item, dict):
            published = item.get("published")
            host = int(published) if published not in (None, "") else None
            out.add((host, int(item["target"]), item.get("protocol", "tcp")))
        else:
            for p in compose_ports.ports(item):
                out.add((p.get("host"), p["container"], p.get("protocol", "tcp")))
    return out


def _targets(raw: dict[str, Any]) -> set[str]:
    out = set()
    for item in raw.get("volumes") or []:
        text = str(item)
        out.add(item["target"] if isinstance(item, dict) else text.split(":")[1] if ":" in text else text)
    for key, default in (("secrets", "/run/secrets/"), ("configs", "/")):
        for item in raw.get(key) or []:
            source = item.get("source") if isinstance(item, dict) else item
            target = item.get("target", f"{default}{source}") if isinstance(item, dict) else f"{default}{source}"
            out.add(target if target.startswith("/") else f"/run/secrets/{target}")
    tmpfs = raw.get("tmpfs") or []
    out.update(t.split(":")[0] for t in ([tmpfs] if isinstance(tmpfs, str) else tmpfs))
    return out


def difference(theirs: dict[str, Any], mine: dict[str, Any]) -> str | None:
    """The first field where pushorch's services differ from the reference's, or None."""
    # `docker-compose config` (1.29) prints the services behind a profile too; none is enabled here
    services = {k: v for k, v in (theirs.get("services") or {}).items() if not v.get("profiles")}
    if set(services) != set(mine):
        return f"services {sorted(services)} vs {sorted(mine)}"
    for name, raw in services.items():
        raw, s = _dollars(raw), mine[name]
        env = {k: str(v) for k, v in (raw.get("environment") or {}).items() if v is not None}
        checks = {
            "image": (raw.get("image") if "build" not in raw else s.image, s.image),
            "command": (_words(raw.get("command")), _words(s.command)),
            "entrypoint": (_words(raw.get("entrypoint")), _words(s.entrypoint)),
            "environment": (env, {k: str(v) for k, v in s.env.items()}),
            "ports": (_ports(raw.get("ports")), {(p.host, p.container, p.protocol) for p in s.ports}),
            "mounts": (_targets(raw), {v.target for v in s.volumes} | {t.split(":")[0] for t in s.tmpfs}),
            "healthcheck": ((raw.get("healthcheck") or {}).get("test"), s.healthcheck.test if s.healthcheck else None),
            # compose's default is `no`; pushorch's `unless-stopped` (docs/compose.md): a rebooted host runs them
            "restart": (raw.get("restart", "unless-stopped"), s.restart),
            "depends_on": (set(raw.get("depends_on") or []), set(s.depends_on)),
            "replicas": ((raw.get("deploy") or {}).get("replicas", raw.get("scale")), s.replicas),
        }
        for field, (want, got) in checks.items():
            if want != got:
                return f"services.{name}.{field}: docker-compose {want!r}, pushorch {got!r}"
    return None


def main(argv: list[str]) -> int:
    verbose = "--verbose" in argv
    roots = [Path(a) for a in argv if a != "--verbose"]
    counts: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    differs = []
    with tempfile.TemporaryDirectory() as scratch:
        inventory = Path(scratch) / "inventory.ini"
        inventory.write_text("h1\n")
        paths = candidates(roots, Path(scratch) / "examples")
        for path in paths:
            theirs = reference(path)
            counts["schema-valid" if schema_valid(path) else "schema-invalid"] += 1
            services, refusals = ours(path, inventory)
            if theirs is None:
                counts["refused by both" if services is None else "refused by docker-compose only"] += 1
                continue
            if services is None:
                counts["refused"] += 1
                reasons.update(_reason(m) for m in set(refusals))
                if verbose:
                    print(f"  refused: {path}: {refusals[0]}")
                continue
            found = difference(theirs, services)
            if found is None:
                counts["same"] += 1
            else:
                differs.append(f"{path}: {found}")
    tally = ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
    print(f"{len(paths)} compose files: {tally}, {len(differs)} differ")
    for reason, n in reasons.most_common():
        print(f"  refused {n}x: {reason}")
    for line in differs:
        print("  differs:", line)
    return 1 if differs else 0


def _reason(message: str) -> str:
    """A refusal's message without what is particular to one file (names, paths, values)."""
    return re.sub(r"'[^']*'|\"[^\"]*\"|/[\w./-]+", "…", message)[:110]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
