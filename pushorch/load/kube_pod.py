"""A Deployment's pod template as one pushorch service: its container (image, command, env, ports,
probes, resources, security), its volumes (ConfigMap and Secret files, hostPath, emptyDir)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from pushorch.errors import Problem
from pushorch.load import compose_ports
from pushorch.load.yamlfile import Document, KeyPath
from pushorch.secret import Secret

POD = ("spec", "template", "spec")
C = (*POD, "containers", 0)
FILES = "/etc/pushorch/kube"  # ConfigMap and Secret volumes, per Deployment and volume
_POD = {"containers", "volumes", "restartPolicy", "terminationGracePeriodSeconds", "hostNetwork", "hostname",
        "securityContext"}  # fmt: skip
_CONTAINER = {"name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "ports", "readinessProbe",
              "livenessProbe", "resources", "volumeMounts", "workingDir", "securityContext"}  # fmt: skip
_SECURITY = {"runAsUser", "runAsGroup", "readOnlyRootFilesystem", "capabilities", "privileged",
             "allowPrivilegeEscalation"}  # fmt: skip
_PROBE = {"httpGet", "tcpSocket", "exec", "periodSeconds", "timeoutSeconds", "initialDelaySeconds",
          "failureThreshold", "successThreshold"}  # fmt: skip
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class Pod:
    """One Deployment's pod; `problems` and `tasks` (the copy tasks of its ConfigMap and Secret files)
    fill as `service` maps it."""

    def __init__(
        self,
        doc: Document,
        named: dict[tuple[str, str], int],
        docs: list[Document],
        image_map: tuple[tuple[str, str], ...],
    ) -> None:
        self.doc, self.named, self.docs, self.image_map = doc, named, docs, image_map
        self.problems: list[Problem] = []
        self.tasks: list[dict[str, Any]] = []
        self.pod = ((doc.data.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = self.pod.get("containers") or [{}]
        self.c = containers[0]
        if len(containers) != 1:
            self.bad((*POD, "containers"), "pushorch runs one container per service: one container per pod")
        self.by_name = {p["name"]: p["containerPort"] for p in self.c.get("ports") or [] if "name" in p}

    def bad(self, at: KeyPath, message: str, index: int | None = None) -> None:
        self.problems.append((self.doc if index is None else self.docs[index]).problem(at, message))

    def only(self, at: KeyPath, value: Any, allowed: set[str], what: str) -> None:
        for key in sorted(set(value) - allowed if isinstance(value, dict) else (), key=str):
            self.bad((*at, key), f"{what} field {key!r} is not supported by pushorch")

    def port(self, value: Any, at: KeyPath, index: int | None = None) -> int:
        """A port as a probe or a Service gives it: a number, or the name of one of the container's."""
        if isinstance(value, int):
            return value
        if value in self.by_name:
            return int(self.by_name[value])
        self.bad(at, f"no container port is named {value!r}", index)
        return 1

    def service(self, name: str) -> dict[str, Any]:
        c = self.c
        self.only(POD, self.pod, _POD, "pod")
        self.only(C, c, _CONTAINER, "container")
        image = str(c.get("image", ""))
        out: dict[str, Any] = {"name": name, "image": dict(self.image_map).get(image, image)}
        if c.get("imagePullPolicy", "IfNotPresent") != "IfNotPresent":
            self.bad((*C, "imagePullPolicy"), "pushorch pulls an image a host does not have (IfNotPresent): pin a tag")
        env = self._env()
        plain = {k: v for k, v in env.items() if isinstance(v, str)}
        for key, to in (("command", "entrypoint"), ("args", "command")):  # Kubernetes' names are Docker's swapped
            if c.get(key) is not None:
                out[to] = [_expand(str(x), plain) for x in c[key]]
        if env:
            out["env"] = env
        labels = ((self.doc.data["spec"]["template"].get("metadata") or {}).get("labels")) or {}
        if labels:
            out["labels"] = {str(k): str(v) for k, v in labels.items()}
        for j, p in enumerate(c.get("ports") or []):
            self.only((*C, "ports", j), p, {"containerPort", "hostPort", "protocol", "name"}, "port")
            if p.get("hostPort"):  # published as the pod asks; other ports only through a Service
                out.setdefault("ports", []).append(
                    {"container": p["containerPort"], "host": p["hostPort"], "protocol": p.get("protocol", "TCP")}
                )
        if c.get("readinessProbe"):
            out["health"] = self._gate(c["readinessProbe"])
        if c.get("livenessProbe"):
            out["healthcheck"] = self._liveness(c["livenessProbe"])
        self._resources(out)
        self._volumes(name, out)
        self._security(out)
        if c.get("workingDir"):
            out.setdefault("options", []).extend(["--workdir", str(c["workingDir"])])
        if "terminationGracePeriodSeconds" in self.pod:
            out["stop_timeout"] = self.pod["terminationGracePeriodSeconds"]
        if self.pod.get("hostNetwork"):
            out["network_mode"] = "host"
        if self.pod.get("hostname"):
            out["hostname"] = self.pod["hostname"]
        if self.pod.get("restartPolicy", "Always") != "Always":
            self.bad((*POD, "restartPolicy"), "a Deployment's pods restart Always")
        return out

    def _env(self) -> dict[str, str | Secret]:
        """envFrom first, then env over it, as Kubernetes builds it; `$(VAR)` refers to what comes before."""
        env: dict[str, str | Secret] = {}
        for j, source in enumerate(self.c.get("envFrom") or []):
            at = (*C, "envFrom", j)
            self.only(at, source, {"configMapRef", "secretRef", "prefix"}, "envFrom")
            kind = "ConfigMap" if "configMapRef" in source else "Secret"
            ref = source.get("configMapRef") or source.get("secretRef") or {}
            for key, value in (self._data(kind, ref, at) or {}).items():
                env[f"{source.get('prefix', '')}{key}"] = value
        for j, item in enumerate(self.c.get("env") or []):
            at = (*C, "env", j)
            if "valueFrom" not in item:
                plain = {k: v for k, v in env.items() if isinstance(v, str)}
                env[item["name"]] = _expand(str(item.get("value", "")), plain)
                continue
            source = item["valueFrom"]
            self.only((*at, "valueFrom"), source, {"configMapKeyRef", "secretKeyRef"}, "valueFrom")
            kind = "ConfigMap" if "configMapKeyRef" in source else "Secret"
            ref = source.get("configMapKeyRef") or source.get("secretKeyRef")
            data = self._data(kind, ref, (*at, "valueFrom")) if ref else None
            if data is not None and ref is not None and ref.get("key") in data:
                env[item["name"]] = data[ref["key"]]
            elif data is not None and ref is not None and not ref.get("optional"):
                self.bad((*at, "valueFrom"), f"{kind} {ref.get('name')!r} has no key {ref.get('key')!r}")
        return env

    def _data(self, kind: str, ref: dict[str, Any], at: KeyPath) -> dict[str, str | Secret] | None:
        """A ConfigMap's or Secret's keys and values (a Secret's kept secret); None when it is missing."""
        name = ref.get("name") or ref.get("secretName")
        index = self.named.get((kind, str(name)))
        if index is None:
            if not ref.get("optional"):
                self.bad(at, f"{kind} {name!r} is not in these manifests")
            return None
        data = self.docs[index].data
        if "binaryData" in data:
            self.bad(("binaryData",), "binaryData is not supported: give the values as text", index)
        if kind == "ConfigMap":
            return {str(k): str(v) for k, v in (data.get("data") or {}).items()}
        out: dict[str, str | Secret] = {}
        for key, value in (data.get("data") or {}).items():
            text = secret_text(str(value))
            if text is None:
                self.bad(("data", key), "not base64 of UTF-8 text", index)
            out[str(key)] = Secret(text or "")
        out.update({str(k): Secret(str(v)) for k, v in (data.get("stringData") or {}).items()})
        return out

    def _gate(self, probe: dict[str, Any]) -> dict[str, Any]:
        """readinessProbe -> the rollout's gate: the instance takes traffic once it passes."""
        at = (*C, "readinessProbe")
        self.only(at, probe, _PROBE, "probe")
        gate: dict[str, Any] = {}
        if "httpGet" in probe:
            get = probe["httpGet"]
            self.only((*at, "httpGet"), get, {"path", "port", "scheme"}, "httpGet")
            if get.get("scheme", "HTTP") != "HTTP":
                self.bad((*at, "httpGet", "scheme"), "the gate speaks HTTP (scheme: HTTP)")
            gate["http"] = {"path": get.get("path", "/"), "port": self.port(get["port"], (*at, "httpGet", "port"))}
        elif "tcpSocket" in probe:
            self.only((*at, "tcpSocket"), probe["tcpSocket"], {"port"}, "tcpSocket")
            gate["tcp"] = {"port": self.port(probe["tcpSocket"]["port"], (*at, "tcpSocket", "port"))}
        elif "exec" in probe:
            gate["cmd"] = [str(x) for x in probe["exec"].get("command") or []]
        else:
            self.bad(at, "a probe is httpGet, tcpSocket or exec")
        if "periodSeconds" in probe:
            gate["interval"] = probe["periodSeconds"]
        if "timeoutSeconds" in probe:
            gate["timeout"] = probe["timeoutSeconds"]
        return gate

    def _liveness(self, probe: dict[str, Any]) -> dict[str, Any]:
        """livenessProbe -> Docker's health check, which runs inside the container: exec only."""
        at = (*C, "livenessProbe")
        self.only(at, probe, _PROBE - {"successThreshold"}, "livenessProbe")
        if "exec" not in probe:
            self.bad(at, "Docker's health check runs a command in the container: give livenessProbe.exec")
            return {}
        check: dict[str, Any] = {"test": ["CMD", *[str(x) for x in probe["exec"].get("command") or []]]}
        for key, to in (("periodSeconds", "interval"), ("timeoutSeconds", "timeout"),
                        ("failureThreshold", "retries"), ("initialDelaySeconds", "start_period")):  # fmt: skip
            if key in probe:
                check[to] = probe[key]
        return check

    def _resources(self, out: dict[str, Any]) -> None:
        at = (*C, "resources")
        given = self.c.get("resources") or {}
        self.only(at, given, {"limits", "requests"}, "resources")
        for key in ("limits", "requests"):
            self.only((*at, key), given.get(key), {"cpu", "memory"}, key)
        limits, requests = given.get("limits") or {}, given.get("requests") or {}
        if limits:
            out["resources"] = {
                **({"cpus": cpus(limits["cpu"])} if "cpu" in limits else {}),
                **({"memory": memory(limits["memory"])} if "memory" in limits else {}),
            }
        if "memory" in requests:  # what Docker keeps for it under memory pressure
            out.setdefault("options", []).extend(["--memory-reservation", memory(requests["memory"])])
        if "cpu" in requests:  # its share of the CPU when the host is busy (1024 = one CPU)
            out.setdefault("options", []).extend(["--cpu-shares", str(max(2, round(cpus(requests["cpu"]) * 1024)))])

    def _volumes(self, deployment: str, out: dict[str, Any]) -> None:
        declared = {v.get("name"): (j, v) for j, v in enumerate(self.pod.get("volumes") or [])}
        for j, mount in enumerate(self.c.get("volumeMounts") or []):
            at = (*C, "volumeMounts", j)
            self.only(at, mount, {"name", "mountPath", "readOnly", "subPath"}, "volumeMount")
            if mount["name"] not in declared:
                self.bad((*at, "name"), f"no volume {mount['name']!r} in the pod's volumes")
                continue
            k, volume = declared[mount["name"]]
            vat = (*POD, "volumes", k)
            self.only(vat, volume, {"name", "configMap", "secret", "hostPath", "emptyDir"}, "volume")
            target, sub = str(mount["mountPath"]), mount.get("subPath")
            read_only = bool(mount.get("readOnly"))
            if "hostPath" in volume:
                self.only((*vat, "hostPath"), volume["hostPath"], {"path", "type"}, "hostPath")
                source = str(volume["hostPath"]["path"]).rstrip("/") + (f"/{sub}" if sub else "")
                out.setdefault("volumes", []).append({"source": source, "target": target, "read_only": read_only})
            elif "emptyDir" in volume:  # scratch space that goes with the container: tmpfs
                self.only((*vat, "emptyDir"), volume["emptyDir"], {"medium", "sizeLimit"}, "emptyDir")
                limit = (volume["emptyDir"] or {}).get("sizeLimit")
                out.setdefault("tmpfs", []).append(target + (f":size={memory(limit)}" if limit else ""))
            elif "configMap" in volume or "secret" in volume:
                directory = self._files(deployment, volume, vat)
                source = directory + (f"/{sub}" if sub else "")
                out.setdefault("volumes", []).append({"source": source, "target": target, "read_only": True})
                out.setdefault("restart_on", []).extend(t["name"] for t in self.tasks if t["dir"] == directory)
        for task in self.tasks:
            task.pop("dir", None)

    def _files(self, deployment: str, volume: dict[str, Any], at: KeyPath) -> str:
        """A ConfigMap's or Secret's keys as files in a directory of the hosts (copy tasks)."""
        kind = "ConfigMap" if "configMap" in volume else "Secret"
        spec = volume.get("configMap") or volume.get("secret") or {}
        key = "configMap" if kind == "ConfigMap" else "secret"
        self.only((*at, key), spec, {"name", "secretName", "items", "defaultMode", "optional"}, key)
        data = self._data(kind, spec, (*at, key)) or {}
        directory = f"{FILES}/{deployment}/{volume['name']}"
        items = spec.get("items") or [{"key": k, "path": k} for k in data]
        default = spec.get("defaultMode", 0o600 if kind == "Secret" else 0o644)
        for n, item in enumerate(items):
            if item["key"] not in data:
                self.bad((*at, key, "items", n), f"{kind} {spec.get('name') or spec.get('secretName')!r} has no key "
                         f"{item['key']!r}")  # fmt: skip
                continue
            value = data[item["key"]]
            copy: dict[str, Any] = {
                "dest": f"{directory}/{item['path']}",
                "content": str(value),
                "mode": f"{item.get('mode', default):04o}",
            }
            if isinstance(value, Secret):
                copy.update(content=value.reveal(), secret=True)
            self.tasks.append({"name": f"kubernetes {deployment} {volume['name']} {item['path']}", "copy": copy,
                               "dir": directory})  # fmt: skip
        return directory

    def _security(self, out: dict[str, Any]) -> None:
        """The pod's securityContext, the container's over it."""
        merged: dict[str, Any] = {}
        for at, given in (((*POD, "securityContext"), self.pod.get("securityContext")),
                          ((*C, "securityContext"), self.c.get("securityContext"))):  # fmt: skip
            self.only(at, given, _SECURITY, "securityContext")
            merged.update(given or {})
        if "runAsUser" in merged:
            out["user"] = str(merged["runAsUser"]) + (f":{merged['runAsGroup']}" if "runAsGroup" in merged else "")
        if merged.get("readOnlyRootFilesystem"):
            out["read_only"] = True
        caps = merged.get("capabilities") or {}
        for key, to in (("add", "cap_add"), ("drop", "cap_drop")):
            if caps.get(key):
                out[to] = [str(x) for x in caps[key]]
        if merged.get("privileged"):
            out.setdefault("options", []).append("--privileged")
        if merged.get("allowPrivilegeEscalation") is False:
            out.setdefault("security_opt", []).append("no-new-privileges")


def cpus(value: Any) -> float:
    """A CPU quantity: 0.5, '500m', '2'."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory(value: Any) -> str:
    """A memory quantity ('128Mi', '1G', '512000') as Docker's size."""
    text = str(value)
    for suffix, unit in (("Ki", "k"), ("Mi", "m"), ("Gi", "g")):
        if text.endswith(suffix):  # Docker's units are binary too
            return compose_ports.size(f"{text[: -len(suffix)]}{unit}")
    units = {"Ti": 1024**4, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return str(int(float(text[: -len(suffix)]) * factor))
    return str(int(float(text)))


def secret_text(value: str) -> str | None:
    """A Secret's `data` value (base64) as text, or None when it is not base64 of UTF-8."""
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` references to the container's variables; `$$` is a dollar."""
    return _REFERENCE.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)
