"""`pushorch convert`: the service playbook a compose project stands for, as YAML a user can keep."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from pushorch.errors import InputError
from pushorch.load import compose, compose_file
from pushorch.load.context import NO_CONTEXT, LoadContext

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
# - text that looks like Jinja is wrapped in {{% raw %}}: playbook values are templates.
"""


def playbook_text(paths: Sequence[str], context: LoadContext = NO_CONTEXT) -> str:
    """The plays as YAML under a comment saying what does not map one to one; InputError otherwise."""
    project, problems = compose_file.load_project(list(paths), context)
    if project is None:
        raise InputError(problems)
    doc, found = compose.to_plays(project, context)
    if problems or found:
        raise InputError(problems + found)
    body = yaml.safe_dump(doc.data, sort_keys=False, default_flow_style=False, width=120)
    return _NOTES.format(files=", ".join(paths), name=project.name) + body
