"""Kubernetes manifests checked against Kubernetes' own JSON schemas (as kubernetes-validate ships them,
strict: no unknown field), every error at once at its file:line:col."""

from __future__ import annotations

import functools
from typing import Any

from pushorch.errors import Problem
from pushorch.load.yamlfile import Document, KeyPath

KINDS = {("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret")}


def problems(doc: Document) -> tuple[list[Problem], bool]:
    """What Kubernetes itself would refuse in this manifest (a kind pushorch maps, see KINDS), and
    whether its shape holds anyway (only unknown fields: the mapping can still name what else is wrong)."""
    validator = _validator(str(doc.data["apiVersion"]), str(doc.data["kind"]))
    out: list[Problem] = []
    shaped = True
    for error in sorted(validator.iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        at: KeyPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(error.schema.get("properties") or {})
            for key in sorted(set(error.instance) - known, key=str):
                out.append(doc.problem((*at, key), f"unknown field {key!r}: Kubernetes refuses it"))
            continue
        out.append(doc.problem(at, f"Kubernetes {_version()}: {error.message}"))
        shaped = False
    return out, shaped


@functools.cache
def _version() -> str:
    import kubernetes_validate  # type: ignore[import-untyped]  # 20 MB of schemas: only read when a manifest is

    return str(kubernetes_validate.latest_version())


@functools.cache
def _validator(api_version: str, kind: str) -> Any:
    import jsonschema  # type: ignore[import-untyped]
    from kubernetes_validate.utils import schema_contents  # type: ignore[import-untyped]
    from referencing import Registry, Resource

    version = _version()
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    group = api_version.replace("/", "-")
    schema = schema_contents(f"{folder}/{kind.lower()}-{group}.json", version)
    definitions = schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)
