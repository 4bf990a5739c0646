"""A compose project as pushorch plays: each compose service a pushorch service with its rollout, gate
and failover; every compose key either mapped or refused with file:line:col, never dropped."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from pushorch.errors import Problem
from pushorch.load import compose_jobs, compose_ports
from pushorch.load.compose_file import Project, literal, read_env_file
from pushorch.load.context import NO_CONTEXT, LoadContext
from pushorch.load.yamlfile import Document, KeyPath, longest_prefix, read_text

# compose key -> pushorch key, values taken as they are
_SAME = {
    "user": "user", "labels": "labels", "cap_add": "cap_add", "cap_drop": "cap_drop", "devices": "devices",
    "sysctls": "sysctls", "read_only": "read_only", "init": "init", "security_opt": "security_opt",
    "hostname": "hostname", "network_mode": "network_mode", "gpus": "gpus",
}  # fmt: skip
# compose key -> the `docker run` flag pushorch passes it with (no model of its own)
_FLAGS = {"working_dir": "--workdir", "stop_signal": "--stop-signal", "platform": "--platform", "pid": "--pid",
          "ipc": "--ipc", "mac_address": "--mac-address", "domainname": "--domainname", "dns": "--dns",
          "dns_search": "--dns-search", "group_add": "--group-add", "expose": "--expose",
          "runtime": "--runtime"}  # fmt: skip
_HANDLED = {"image", "build", "command", "entrypoint", "environment", "env_file", "ports", "pull_policy", "volumes",
            "tmpfs", "networks", "depends_on", "healthcheck", "restart", "ulimits", "extra_hosts", "shm_size",
            "stop_grace_period", "logging", "deploy", "configs", "secrets", "profiles", "x-pushorch",
            "container_name", "scale"}  # fmt: skip
_TOP = {"services", "networks", "volumes", "configs", "secrets", "name", "version", "x-pushorch"}
_X_SERVICE = {"hosts", "replicas", "failover", "consul", "update", "health", "ingress"}
_X_TOP = {"hosts", "become", "ingress"}
_DEPLOY = {"replicas", "update_config", "restart_policy", "resources", "mode", "labels"}
# pushorch key -> the compose key it is made from, where the names differ
_ORIGIN = {"env": "environment", "health": "healthcheck", "replicas": "deploy", "update": "deploy",
           "resources": "deploy", "stop_timeout": "stop_grace_period", "log": "logging", "restart_on": "configs",
           "options": "working_dir"}  # fmt: skip
_UPDATE = {"parallelism": "parallelism", "delay": "delay", "order": "order", "monitor": "min_healthy_time"}


@dataclass(slots=True)
class MappedDocument(Document):
    """The plays made from a compose project: a problem in them points into the compose files."""

    project: Project | None = None
    source: dict[KeyPath, KeyPath] = field(default_factory=dict)  # play key path -> compose key path

    def problem(self, keypath: KeyPath, message: str) -> Problem:
        found = longest_prefix(self.source, keypath)
        if found is not None and self.project is not None:
            return self.project.problem(found, message)
        return Document.problem(self, keypath, message)  # slots dataclass: no zero-argument super()


def to_plays(project: Project, context: LoadContext = NO_CONTEXT) -> tuple[MappedDocument, list[Problem]]:
    """The project as plays (one per set of hosts), their origins, and every problem found."""
    return _Mapper(project, context).run()


class _Mapper:
    def __init__(self, project: Project, context: LoadContext) -> None:
        self.p, self.context = project, context
        self.problems: list[Problem] = []
        self.doc = MappedDocument(path=project.files[0], data=[], project=project)
        self.name = project.name
        self.volumes: dict[str, str] = {}
        self.networks: dict[str, str] = {}  # compose name -> Docker's
        self.created: list[dict[str, Any]] = []  # the networks pushorch creates (not `external`)
        self.used: set[str] = set()  # Docker's names of the networks some service joins
        # (configs|secrets, name) -> the copy task that ships its file to the hosts
        self.files: dict[tuple[str, str], dict[str, Any]] = {}
        self.waits: dict[str, list[str]] = {}  # service -> the services it waits to complete (its jobs)
        self.missing: set[tuple[str, str]] = set()  # configs and secrets whose file is not there

    def bad(self, keypath: KeyPath, message: str) -> None:
        self.problems.append(self.p.problem(keypath, message))

    def run(self) -> tuple[MappedDocument, list[Problem]]:
        data = self.p.data
        for key in sorted(set(data) - _TOP):
            if not str(key).startswith("x-"):
                self.bad((key,), f"top-level key {key!r} is not supported by pushorch")
        top = self._x(("x-pushorch",), data.get("x-pushorch"), _X_TOP)
        self._declared()
        plays: dict[str, dict[str, Any]] = {}
        for name, raw in data["services"].items():
            where = ("services", name)
            if not isinstance(raw, dict):
                self.bad(where, "a service is a mapping")
                continue
            mine = self._x((*where, "x-pushorch"), raw.get("x-pushorch"), _X_SERVICE)
            hosts = mine.pop("hosts", None) or top.get("hosts") or self.context.compose.hosts
            if not hosts:
                self.bad(where, "which hosts run it? give --hosts GROUP, or x-pushorch: {hosts: GROUP}")
                continue
            play = plays.setdefault(str(hosts), self._play(str(hosts), top))
            play["services"].append(self._service(str(name), raw, mine))
        self.doc.data = list(plays.values())
        compose_jobs.as_jobs(self.doc.data, self.waits, self.bad)
        for pi, play in enumerate(self.doc.data):
            play["networks"] = [n for n in self.created if n["name"] in self.used]
            self.doc.source[(pi,)] = ()
            for si, service in enumerate(play["services"]):
                where = ("services", service["name"])
                self.doc.source[(pi, "services", si)] = where
                for key in service:  # a problem in a mapped value points at the compose key it came from
                    self.doc.source[(pi, "services", si, key)] = (*where, _ORIGIN.get(key, key))
                self._copy_tasks(play, service)
        if isinstance(edge := top.get("ingress"), dict):  # the ingress hosts' play: {hosts: GROUP, http_port...}
            proxy = {k: v for k, v in edge.items() if k != "hosts"}
            name = f"compose {self.name} ingress"
            self.doc.data.append({"name": name, "hosts": edge.get("hosts", "edge"), "ingress": proxy})
            self.doc.source[(len(self.doc.data) - 1,)] = ("x-pushorch", "ingress")
        self.doc.data = literal(self.doc.data)
        return self.doc, self.problems

    def _x(self, where: KeyPath, raw: Any, allowed: set[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.bad(where, "x-pushorch is a mapping")
            return {}
        for key in sorted(set(raw) - allowed):
            self.bad((*where, key), f"x-pushorch key {key!r} is not one of {', '.join(sorted(allowed))}")
        return {k: v for k, v in raw.items() if k in allowed}

    def _play(self, hosts: str, top: dict[str, Any]) -> dict[str, Any]:
        play: dict[str, Any] = {"name": f"compose {self.name}", "hosts": hosts}
        if "become" in top:
            play["become"] = top["become"]
        play.update({"networks": [], "tasks": [], "services": []})
        return play

    def _declared(self) -> None:
        """Top-level volumes, networks, configs and secrets: Docker's names for them, files to ship."""
        data = self.p.data
        for key in ("volumes", "networks", "configs", "secrets"):
            for name, spec in (data.get(key) or {}).items():
                spec = spec or {}
                where = (key, name)
                if not isinstance(spec, dict):
                    self.bad(where, f"a {key[:-1]} is a mapping")
                    continue
                external = bool(spec.get("external"))
                docker_name = str(spec.get("name") or (name if external else f"{self.name}_{name}"))
                if key == "volumes":
                    self._only(where, spec, {"name", "external", "labels", "driver"}, {"driver": "local"})
                    self.volumes[str(name)] = docker_name
                elif key == "networks":
                    self._network(where, str(name), docker_name, spec, external)
                else:
                    self._only(where, spec, {"file", "name"}, {})
                    if "file" not in spec:
                        self.bad(where, f"only {key} from a file are supported (file: PATH)")
                        continue
                    secret = key == "secrets"
                    if not os.path.isfile(os.path.join(self.p.directory, str(spec["file"]))):
                        self.bad((*where, "file"), f"{spec['file']} not found (beside the compose file)")
                        self.missing.add((key, str(name)))  # said once, here, not again where it is used
                        continue
                    copy = {
                        "src": os.path.normpath(os.path.join(self.p.directory, str(spec["file"]))),
                        "dest": f"/etc/pushorch/compose/{self.name}/{key}/{name}",
                        "mode": "0600" if secret else "0644",
                        "secret": secret,
                    }
                    self.files[(key, str(name))] = {"name": f"compose {key[:-1]} {name}", "copy": copy}
        if "default" not in self.networks:
            self._network(("networks",), "default", f"{self.name}_default", {}, False)

    def _network(self, where: KeyPath, name: str, docker_name: str, spec: dict[str, Any], external: bool) -> None:
        self._only(where, spec, {"name", "external", "driver", "internal", "labels", "ipam", "attachable"}, {})
        self.networks[name] = docker_name
        if external:  # joined, never created
            return
        out: dict[str, Any] = {"name": docker_name}
        out.update({k: spec[k] for k in ("driver", "internal", "labels") if k in spec})
        configs = (spec.get("ipam") or {}).get("config") or []
        if configs and isinstance(configs[0], dict):
            out.update({k: v for k, v in configs[0].items() if k in ("subnet", "gateway")})
        self.created.append(out)

    def _only(self, where: KeyPath, spec: dict[str, Any], allowed: set[str], defaults: dict[str, Any]) -> None:
        for key in sorted(set(spec) - allowed):
            self.bad((*where, key), f"{key!r} is not supported here")
        for key, value in defaults.items():
            if key in spec and spec[key] != value:
                self.bad((*where, key), f"only {key}: {value} is supported")

    def _service(self, name: str, raw: dict[str, Any], mine: dict[str, Any]) -> dict[str, Any]:
        where = ("services", name)
        for key in sorted(set(raw) - _HANDLED - set(_SAME) - set(_FLAGS)):
            if not str(key).startswith("x-"):
                self.bad((*where, key), f"compose key {key!r} is not supported by pushorch")
        if raw.get("pull_policy", "missing") not in ("missing", "if_not_present"):
            self.bad((*where, "pull_policy"), "pushorch pulls an image a host does not have (pull_policy: missing)")
        if "container_name" in raw:
            self.bad(
                (*where, "container_name"), "pushorch names the containers (a rollout runs two at once): remove it"
            )
        out: dict[str, Any] = {"name": name, "image": self._image(name, raw)}
        if raw.get("build") is not None:
            self._build(where, raw["build"], out)
        out.update({to: raw[key] for key, to in _SAME.items() if key in raw})
        flags = [x for key, flag in _FLAGS.items() if key in raw and flag for x in _flag(flag, raw[key])]
        if flags:
            out["options"] = flags
        for key in ("command", "entrypoint"):
            if raw.get(key) is not None:  # compose splits a string like a shell; it runs no shell
                out[key] = shlex.split(raw[key]) if isinstance(raw[key], str) else [str(x) for x in raw[key]]
        env = self._env(where, raw)
        if env:
            out["env"] = env
        self._mounts(where, raw, out)
        self._ports(where, raw, out)
        self._links(name, where, raw, out)
        self._health(where, raw, mine, out)
        self._deploy(where, raw, mine, out)
        for key in ("ulimits", "extra_hosts"):
            if raw.get(key):
                out[key] = compose_ports.ulimits(raw[key]) if key == "ulimits" else {k: v for k, v in raw[key].items()}
        if raw.get("shm_size") is not None:
            out["shm_size"] = compose_ports.size(raw["shm_size"])
        if raw.get("stop_grace_period") is not None:
            out["stop_timeout"] = raw["stop_grace_period"]
        if raw.get("logging"):
            out["log"] = {"driver": raw["logging"].get("driver"), "options": raw["logging"].get("options") or {}}
        if "restart" in raw:
            out["restart"] = str(raw["restart"]).split(":", 1)[0]
        return out

    def _image(self, name: str, raw: dict[str, Any]) -> str:
        image = str(raw.get("image") or f"{self.name}-{name}")
        for written, instead in self.context.compose.image_map:
            if image == written:
                return instead
        return image

    def _build(self, where: KeyPath, given: Any, out: dict[str, Any]) -> None:
        """Built on the controller and shipped (a playbook's `build:`): the image names the repository,
        pushorch tags it by the digest of its context."""
        spec = {"context": given} if isinstance(given, str) else dict(given or {})
        self._only((*where, "build"), spec, {"context", "dockerfile", "args", "target"}, {})
        given_args = spec.get("args") or {}
        args: dict[str, Any] = {}
        if isinstance(given_args, list):  # `- KEY=VALUE`, or `- KEY` taking the shell's value
            args = dict(a.split("=", 1) if "=" in a else (a, self.p.env.get(a, "")) for a in given_args)
        elif isinstance(given_args, dict):
            args = given_args
        out["build"] = {
            "context": os.path.normpath(os.path.join(self.p.directory, str(spec.get("context", ".")))),
            "dockerfile": str(spec.get("dockerfile", "Dockerfile")),
            "args": {str(k): str(v) for k, v in args.items()},
            **({"target": str(spec["target"])} if spec.get("target") else {}),
        }
        last = out["image"].rsplit("/", 1)[-1]
        if ":" in last:  # compose names the built image with its tag; pushorch's tag is the context's digest
            out["image"] = out["image"][: -(len(last) - last.index(":"))]

    def _env(self, where: KeyPath, raw: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        files = raw.get("env_file") or []
        for i, item in enumerate([files] if isinstance(files, (str, dict)) else files):
            path = item.get("path") if isinstance(item, dict) else item
            text, found = read_text(os.path.join(self.p.directory, str(path)), self.context)
            if found and not (isinstance(item, dict) and item.get("required") is False):
                self.problems.append(self.p.problem((*where, "env_file", i), f"cannot read {path}"))
            env.update(read_env_file(text or ""))
        for key, value in (raw.get("environment") or {}).items():
            if value is None:  # `- KEY` alone: the value in this shell, or not set at all
                if key in self.p.env:
                    env[key] = self.p.env[key]
                continue
            env[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    def _mounts(self, where: KeyPath, raw: dict[str, Any], out: dict[str, Any]) -> None:
        tmpfs = [raw["tmpfs"]] if isinstance(raw.get("tmpfs"), str) else list(raw.get("tmpfs") or [])
        for i, item in enumerate(raw.get("volumes") or []):
            try:
                kind, mount = compose_ports.volume(item, self.volumes)
            except compose_ports.Unsupported as exc:
                self.bad((*where, "volumes", i), str(exc))
                continue
            tmpfs.append(mount) if kind == "tmpfs" else out.setdefault("volumes", []).append(mount)
        for key in ("configs", "secrets"):
            for i, item in enumerate(raw.get(key) or []):
                source = item.get("source") if isinstance(item, dict) else item
                task = self.files.get((key, str(source)))
                if task is None and (key, str(source)) in self.missing:
                    continue
                if task is None:
                    self.bad((*where, key, i), f"{key[:-1]} {source!r} is not declared in the top-level `{key}:`")
                    continue
                default = f"/run/secrets/{source}" if key == "secrets" else f"/{source}"
                target = item.get("target", default) if isinstance(item, dict) else default
                target = target if target.startswith("/") else f"/run/secrets/{target}"
                mount = {"source": task["copy"]["dest"], "target": target, "read_only": True}
                out.setdefault("volumes", []).append(mount)
                out.setdefault("restart_on", []).append(task["name"])
        if tmpfs:
            out["tmpfs"] = tmpfs

    def _ports(self, where: KeyPath, raw: dict[str, Any], out: dict[str, Any]) -> None:
        for i, item in enumerate(raw.get("ports") or []):
            try:
                out.setdefault("ports", []).extend(compose_ports.ports(item))
            except compose_ports.Unsupported as exc:
                self.bad((*where, "ports", i), str(exc))

    def _links(self, name: str, where: KeyPath, raw: dict[str, Any], out: dict[str, Any]) -> None:
        """Networks (each with the service's name as an alias, as compose gives it) and depends_on."""
        if "network_mode" not in raw:
            given = raw.get("networks") or ["default"]
            for net, spec in given.items() if isinstance(given, dict) else ((n, None) for n in given):
                if net not in self.networks:
                    self.bad((*where, "networks"), f"network {net!r} is not declared in the top-level `networks:`")
                    continue
                aliases = [name, *((spec or {}).get("aliases") or [])]
                out.setdefault("networks", []).append({"name": self.networks[net], "aliases": aliases})
                self.used.add(self.networks[net])
        depends = raw.get("depends_on") or []
        for dep, spec in depends.items() if isinstance(depends, dict) else ((d, None) for d in depends):
            condition = (spec or {}).get("condition", "service_started")
            if condition == "service_completed_successfully":  # a job of this service: compose_jobs
                self.waits.setdefault(name, []).append(dep)
                continue
            out.setdefault("depends_on", []).append(dep)

    def _health(self, where: KeyPath, raw: dict[str, Any], mine: dict[str, Any], out: dict[str, Any]) -> None:
        """Compose's healthcheck is Docker's check and, unless x-pushorch says another, the rollout's gate."""
        check = raw.get("healthcheck")
        if isinstance(check, dict):
            for key in sorted(set(check) - {"test", "interval", "timeout", "retries", "start_period", "disable"}):
                self.bad((*where, "healthcheck", key), f"healthcheck key {key!r} is not supported")
            off = check.get("disable") or check.get("test") in (["NONE"], "NONE")
            out["healthcheck"] = {"disable": True} if off else {k: v for k, v in check.items() if k != "disable"}
            if not off:
                out["health"] = {"docker": True}
        if "health" in mine:
            out["health"] = mine["health"]

    def _deploy(self, where: KeyPath, raw: dict[str, Any], mine: dict[str, Any], out: dict[str, Any]) -> None:
        deploy = raw.get("deploy") or {}
        at = (*where, "deploy")
        self._only(at, deploy, _DEPLOY - {"labels"}, {})
        replicas = mine.get("replicas", deploy.get("replicas", raw.get("scale")))
        if deploy.get("mode", "replicated") not in ("replicated", "global"):
            self.bad((*at, "mode"), "mode is replicated or global")
        if replicas is not None and deploy.get("mode") != "global":
            out["replicas"] = replicas
        update: dict[str, Any] = {}
        given = deploy.get("update_config") or {}
        self._only((*at, "update_config"), given, {*_UPDATE, "failure_action", "max_failure_ratio"}, {})
        update.update({to: given[key] for key, to in _UPDATE.items() if key in given})
        if update.get("parallelism") == 0:
            update["parallelism"] = "100%"  # swarm's 0: all at once
        action = given.get("failure_action", "rollback" if given else None)
        if action is not None:
            update["auto_revert"] = action == "rollback"
        if action == "continue" or "max_failure_ratio" in given:
            update["max_failures"] = f"{float(given.get('max_failure_ratio', 1)) * 100:g}%"
        update.update(mine.get("update") or {})
        if update:
            out["update"] = update
        policy = deploy.get("restart_policy") or {}
        self._only((*at, "restart_policy"), policy, {"condition"}, {})
        if "condition" in policy and "restart" not in raw:
            out["restart"] = {"none": "no", "on-failure": "on-failure", "any": "always"}.get(policy["condition"], "?")
        resources = deploy.get("resources") or {}
        self._only((*at, "resources"), resources, {"limits"}, {})
        limits = resources.get("limits") or {}
        self._only((*at, "resources", "limits"), limits, {"cpus", "memory"}, {})
        if limits:
            out["resources"] = {k: float(v) if k == "cpus" else compose_ports.size(v) for k, v in limits.items()}
        for key in ("failover", "consul", "ingress"):
            if key in mine:
                out[key] = mine[key]

    def _copy_tasks(self, play: dict[str, Any], service: dict[str, Any]) -> None:
        """Configs and secrets from files go to the hosts by a copy task the service restarts on."""
        by_name = {task["name"]: task for task in self.files.values()}
        for task_name in service.get("restart_on", []):
            if by_name[task_name] not in play["tasks"]:
                play["tasks"].append(by_name[task_name])


def _flag(flag: str, value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [x for v in values for x in (flag, str(v))]
