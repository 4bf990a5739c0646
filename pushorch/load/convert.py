"""`pushorch convert`: the service playbook a compose project or Kubernetes manifests stand for, as
YAML a user can keep."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from pushorch.errors import InputError, Problem
from pushorch.load import compose, compose_file, kube
from pushorch.load.context import NO_CONTEXT, LoadContext
from pushorch.load.yamlfile import Document, load_yaml_all

_NOTES = """\
# The service playbook pushorch runs for {files} (compose project {name!r}).
# Where the mapping is not one to one:
# - a healthcheck is Docker's check and also the rollout's gate (health: {{docker: true}});
# - deploy.replicas places that many instances across the play's hosts (not several on one host);
# - deploy.update_config: failure_action rollback -> auto_revert, monitor -> min_healthy_time;
# - a string command or entrypoint is split as compose splits it (no shell runs it);
# - configs and secrets are copied to /etc/pushorch/compose/ on the hosts and mounted read-only;
#   a changed file restarts the service under its gate (restart_on);
# - networks and named volumes get compose's names (PROJECT_NAME), each service its name as an alias;
# - a service another waits for with service_completed_successfully is a job of that one (jobs:);
# - without restart, pushorch's unless-stopped (compose's default is no);
# - text that looks like Jinja is wrapped in {{% raw %}}: playbook values are templates.
"""


_KUBE_NOTES = """\
# The service playbook pushorch runs for {files} (Kubernetes manifests).
# Where the mapping is not one to one:
# - a Deployment is a service: its replicas are instances across the play's hosts (one per host);
# - strategy: maxUnavailable > 0 -> stop-first, that many at a time; 0 -> start-first, maxSurge at a
#   time (start-first instances publish on Docker-chosen host ports, which Consul carries);
# - readinessProbe is the rollout's gate; livenessProbe (exec) Docker's health check;
# - command/args are Docker's entrypoint/command; `$(VAR)` references are expanded here;
# - a Service publishes its ports on every host that runs the Deployment (nodePort for NodePort,
#   else port) and is the Consul service (consul-k8s's service-name/-tags/-meta annotations);
# - ConfigMap and Secret volumes are files under /etc/pushorch/kube/ on the hosts (Secrets 0600
#   unless defaultMode says otherwise), mounted read-only; a change restarts the service under its gate;
# - emptyDir is a tmpfs; resources.requests are Docker's --memory-reservation and --cpu-shares;
# - text that looks like Jinja is wrapped in {{% raw %}}: playbook values are templates.
"""


def playbook_text(paths: Sequence[str], context: LoadContext = NO_CONTEXT) -> str:
    """The plays as YAML under a comment saying what does not map one to one; InputError otherwise."""
    manifests, problems = _manifests(paths, context)
    if manifests:
        plays, found = kube.to_plays(manifests, context)
        if problems or found:
            raise InputError(problems + found)
        return _KUBE_NOTES.format(files=", ".join(paths)) + _dump(plays.data)
    project, problems = compose_file.load_project(list(paths), context)
    if project is None:
        raise InputError(problems)
    doc, found = compose.to_plays(project, context)
    if problems or found:
        raise InputError(problems + found)
    return _NOTES.format(files=", ".join(paths), name=project.name) + _dump(doc.data)


def _manifests(paths: Sequence[str], context: LoadContext) -> tuple[list[Document], list[Problem]]:
    """Every document of the files, when all of them are Kubernetes objects; else none."""
    manifests, problems = [], []
    for path in paths:
        docs, found = load_yaml_all(path, context)
        manifests.extend(docs)
        problems.extend(found)
    if manifests and all(kube.is_manifest(doc.data) for doc in manifests):
        return manifests, problems
    return [], []


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120)
