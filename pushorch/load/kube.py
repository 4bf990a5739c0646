"""Kubernetes manifests as pushorch plays: a Deployment is a service (its replicas, rollout and gate), a
Service its Consul registration and published ports, ConfigMaps and Secrets files and env. Every field
is either mapped or refused with file:line:col, never dropped."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pushorch.errors import Problem
from pushorch.load import kube_pod, kube_schema
from pushorch.load.compose_file import literal
from pushorch.load.context import NO_CONTEXT, LoadContext
from pushorch.load.kube_pod import C
from pushorch.load.yamlfile import Document, KeyPath, longest_prefix

HOSTS = "pushorch.io/hosts"  # annotation of a Deployment: the hosts that run it (else --hosts)
# consul-k8s's catalog-sync annotations of a Service, read as it reads them
CONSUL_NAME, CONSUL_TAGS = "consul.hashicorp.com/service-name", "consul.hashicorp.com/service-tags"
CONSUL_META = "consul.hashicorp.com/service-meta-"
_METADATA = {"name", "namespace", "labels", "annotations"}
_DEPLOYMENT = {"replicas", "selector", "template", "strategy", "minReadySeconds", "progressDeadlineSeconds",
               "revisionHistoryLimit"}  # fmt: skip
_SERVICE = {"selector", "ports", "type"}
_SERVICE_PORT = {"name", "port", "targetPort", "protocol", "nodePort"}
# pushorch key -> the manifest key path it is made from (a problem in a mapped value points there)
_ORIGIN: dict[str, KeyPath] = {
    "name": ("metadata", "name"), "replicas": ("spec", "replicas"), "update": ("spec", "strategy"),
    "image": (*C, "image"), "command": (*C, "args"), "entrypoint": (*C, "command"), "env": (*C, "env"),
    "health": (*C, "readinessProbe"), "healthcheck": (*C, "livenessProbe"), "resources": (*C, "resources"),
    "volumes": (*C, "volumeMounts"), "tmpfs": (*C, "volumeMounts"), "ports": (*C, "ports"),
    "labels": ("spec", "template", "metadata", "labels"),
}  # fmt: skip


@dataclass(slots=True)
class ManifestPlays(Document):
    """The plays made from manifests: a problem in them points into the manifest it came from."""

    manifests: list[Document] = field(default_factory=list)
    source: dict[KeyPath, tuple[int, KeyPath]] = field(default_factory=dict)  # play path -> (manifest, path)

    def problem(self, keypath: KeyPath, message: str) -> Problem:
        found = longest_prefix(self.source, keypath)
        if found is not None:
            index, at = found
            return self.manifests[index].problem(at, message)
        return Document.problem(self, keypath, message)  # slots dataclass: no zero-argument super()


def is_manifest(data: Any) -> bool:
    """A Kubernetes object: a mapping with apiVersion and kind."""
    return isinstance(data, dict) and "apiVersion" in data and "kind" in data


def to_plays(manifests: list[Document], context: LoadContext = NO_CONTEXT) -> tuple[ManifestPlays, list[Problem]]:
    """The manifests as plays (one per set of hosts) and every problem found."""
    return _Mapper(manifests, context).run()


class _Mapper:
    def __init__(self, manifests: list[Document], context: LoadContext) -> None:
        self.docs, self.context = manifests, context
        self.problems: list[Problem] = []
        self.out = ManifestPlays(path=manifests[0].path, data=[], manifests=manifests)
        self.named: dict[tuple[str, str], int] = {}  # (kind, name) -> manifest index

    def bad(self, index: int, at: KeyPath, message: str) -> None:
        self.problems.append(self.docs[index].problem(at, message))

    def only(self, index: int, at: KeyPath, value: Any, allowed: set[str], what: str) -> None:
        for key in sorted(set(value) - allowed if isinstance(value, dict) else (), key=str):
            self.bad(index, (*at, key), f"{what} field {key!r} is not supported by pushorch")

    def run(self) -> tuple[ManifestPlays, list[Problem]]:
        valid = []
        for i, doc in enumerate(self.docs):
            kind = (doc.data.get("apiVersion"), doc.data.get("kind"))
            if kind not in kube_schema.KINDS:
                self.bad(i, ("kind",), f"{kind[0]} {kind[1]} is not supported: pushorch maps Deployment (apps/v1), "
                         "Service, ConfigMap and Secret (v1)")  # fmt: skip
                continue
            found, shaped = kube_schema.problems(doc)
            self.problems.extend(found)
            self.only(i, (), doc.data, {"apiVersion", "kind", "metadata", "spec", "data", "stringData", "type"},
                      "top-level")  # fmt: skip
            self.only(i, ("metadata",), doc.data.get("metadata"), _METADATA, "metadata")
            name = str((doc.data.get("metadata") or {}).get("name", ""))
            if shaped and (kind[1], name) in self.named:
                self.bad(i, ("metadata", "name"), f"a second {kind[1]} named {name!r}")
            elif shaped:
                self.named[(kind[1], name)] = i
                valid.append(i)
        deployments = [i for i in valid if self.docs[i].data["kind"] == "Deployment"]
        registrations = self._services(deployments, [i for i in valid if self.docs[i].data["kind"] == "Service"])
        if not deployments and not self.problems:
            self.bad(0, (), "no Deployment in these manifests: nothing to run")
        plays: dict[str, dict[str, Any]] = {}
        for i in deployments:
            self._deployment(i, registrations.get(i), plays)
        self.out.data = literal(list(plays.values()))
        # one problem per place: Kubernetes' own word on an unknown field, not pushorch's as well
        first = {(p.path, p.line, p.col, p.key): p for p in reversed(self.problems)}
        return self.out, sorted(first.values(), key=self.problems.index)

    def _services(self, deployments: list[int], services: list[int]) -> dict[int, int]:
        """Each Service's Deployment (the one whose pod labels its selector matches): deployment -> service."""
        found: dict[int, int] = {}
        for k in services:
            spec = self.docs[k].data.get("spec") or {}
            self.only(k, ("spec",), spec, _SERVICE, "Service")
            if spec.get("type", "ClusterIP") not in ("ClusterIP", "NodePort", "LoadBalancer"):
                self.bad(k, ("spec", "type"), "a Service of type ClusterIP, NodePort or LoadBalancer")
            selector = spec.get("selector") or {}
            chosen = [i for i in deployments if selector and selector.items() <= _pod_labels(self.docs[i]).items()]
            if len(chosen) != 1:
                what = "no Deployment of these manifests" if not chosen else "several Deployments"
                self.bad(k, ("spec", "selector"), f"selects {what}: pushorch registers one Deployment per Service")
            elif chosen[0] in found:
                self.bad(k, ("metadata", "name"), "a second Service for one Deployment: pushorch registers it once")
            else:
                found[chosen[0]] = k
        return found

    def _deployment(self, i: int, service: int | None, plays: dict[str, dict[str, Any]]) -> None:
        doc = self.docs[i]
        meta, spec = doc.data["metadata"], doc.data.get("spec") or {}
        self.only(i, ("spec",), spec, _DEPLOYMENT, "Deployment")
        template = spec.get("template") or {}
        self.only(i, ("spec", "template"), template, {"metadata", "spec"}, "pod template")
        self.only(i, ("spec", "template", "metadata"), template.get("metadata"), {"labels", "annotations"}, "pod")
        selector = spec.get("selector") or {}
        self.only(i, ("spec", "selector"), selector, {"matchLabels"}, "selector")
        if not (selector.get("matchLabels") or {}).items() <= _pod_labels(doc).items():
            self.bad(i, ("spec", "selector"), "the selector does not match the pod template's labels")
        hosts = (meta.get("annotations") or {}).get(HOSTS) or self.context.compose.hosts
        if not hosts:
            self.bad(i, ("metadata", "name"), f"which hosts run it? give --hosts GROUP, or the annotation {HOSTS}")
            return
        replicas = spec.get("replicas", 1)
        if replicas == 0:
            self.bad(i, ("spec", "replicas"), "replicas: 0 (scaled to zero) is not supported: remove the Deployment")
        pod = kube_pod.Pod(doc, self.named, self.docs, self.context.compose.image_map)
        out = pod.service(str(meta["name"]))
        out["replicas"] = replicas
        out["update"] = self._update(i, spec, int(replicas or 1))
        if service is not None:
            self._register(service, pod, out)
        self.problems.extend(pod.problems)
        play = plays.setdefault(str(hosts), {"name": f"kubernetes {hosts}", "hosts": str(hosts), "tasks": [],
                                             "services": []})  # fmt: skip
        pi, si = list(plays).index(str(hosts)), len(play["services"])
        play["services"].append(out)
        play["tasks"].extend(pod.tasks)
        self.out.source[(pi,)] = (i, ())
        self.out.source[(pi, "services", si)] = (i, ())
        for key in out:
            self.out.source[(pi, "services", si, key)] = (i, _ORIGIN.get(key, ()))
        if service is not None:
            self.out.source[(pi, "services", si, "consul")] = (service, ())

    def _update(self, i: int, spec: dict[str, Any], replicas: int) -> dict[str, Any]:
        """strategy -> batch size and order: instances may go missing (maxUnavailable) -> stop-first that
        many at a time; none may (0) -> start-first, maxSurge at a time (as Kubernetes rounds them)."""
        strategy = spec.get("strategy") or {}
        self.only(i, ("spec", "strategy"), strategy, {"type", "rollingUpdate"}, "strategy")
        update: dict[str, Any] = {}
        if strategy.get("type") == "Recreate":
            update.update(parallelism="100%", order="stop-first")
        else:
            rolling = strategy.get("rollingUpdate") or {}
            surge = _resolve(rolling.get("maxSurge", "25%"), replicas, math.ceil)
            unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, math.floor)
            if unavailable:
                update.update(parallelism=unavailable, order="stop-first")
            elif surge:
                update.update(parallelism=surge, order="start-first")
            else:
                self.bad(i, ("spec", "strategy"), "maxSurge and maxUnavailable cannot both be 0")
        for key, to in (("minReadySeconds", "min_healthy_time"), ("progressDeadlineSeconds", "healthy_deadline"),
                        ("revisionHistoryLimit", "keep")):  # fmt: skip
            if key in spec:
                update[to] = spec[key]
        return update

    def _register(self, k: int, pod: kube_pod.Pod, out: dict[str, Any]) -> None:
        """The Service: its ports published on every host that runs the Deployment (nodePort for a
        NodePort Service, else `port`), and the Consul service its name and annotations say."""
        doc = self.docs[k]
        spec, annotations = doc.data["spec"], doc.data["metadata"].get("annotations") or {}
        published = []
        for j, port in enumerate(spec.get("ports") or []):
            self.only(k, ("spec", "ports", j), port, _SERVICE_PORT, "Service port")
            inside = pod.port(port.get("targetPort", port["port"]), ("spec", "ports", j, "targetPort"), k)
            host = port.get("nodePort") if spec.get("type") == "NodePort" else None
            mapping = {"container": inside, "host": host or port["port"], "protocol": port.get("protocol", "TCP")}
            published.append(mapping)
        taken = {(p["container"], p["protocol"]) for p in published}
        out["ports"] = published + [p for p in out.get("ports", []) if (p["container"], p["protocol"]) not in taken]
        for p in out["ports"]:
            p["protocol"] = str(p["protocol"]).lower()
        consul: dict[str, Any] = {"name": annotations.get(CONSUL_NAME, doc.data["metadata"]["name"])}
        tags = [t.strip() for t in str(annotations.get(CONSUL_TAGS, "")).split(",") if t.strip()]
        meta = {a.removeprefix(CONSUL_META): str(v) for a, v in annotations.items() if a.startswith(CONSUL_META)}
        consul.update({"tags": tags} if tags else {}, **({"meta": meta} if meta else {}))
        if published:
            consul["port"] = published[0]["host"]
        out["consul"] = consul


def _pod_labels(doc: Document) -> dict[str, Any]:
    return ((doc.data.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}


def _resolve(value: Any, replicas: int, rounding: Any) -> int:
    """maxSurge/maxUnavailable: a count, or a percentage of the replicas (surge up, unavailable down)."""
    if isinstance(value, str) and value.endswith("%"):
        return int(rounding(replicas * float(value[:-1]) / 100))
    return int(value)
