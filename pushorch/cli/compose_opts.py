"""The options a compose file's loading takes, as docker compose users know them: --profile, plus
--hosts (which inventory hosts run it) and --image-map (an image to run instead of one it names)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from pushorch.cli.app import App

F = TypeVar("F", bound=Callable[..., Any])


def _hosts(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    ctx.ensure_object(App).compose_hosts = value


def _profiles(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    ctx.ensure_object(App).profiles = tuple(p for v in value for p in v.split(",") if p)


def _image_map(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    pairs = []
    for given in value:
        written, sep, instead = given.partition("=")
        if not sep or not written or not instead:
            raise click.BadParameter(f"{given!r} is not WRITTEN=INSTEAD (like nginx:1.14.2=REG/nginx:1.14.2)")
        pairs.append((written, instead))
    ctx.ensure_object(App).image_map = tuple(pairs)


def compose_options(func: F) -> F:
    """--hosts, --profile, --image-map (compose files and Kubernetes manifests among the playbooks)."""
    for option in (
        click.option("--hosts", "compose_hosts", metavar="PATTERN", expose_value=False, callback=_hosts,
                     help="Hosts that run a compose file's services or the Deployments (unless the file says)."),
        click.option("--profile", "profiles", multiple=True, metavar="NAME", expose_value=False, callback=_profiles,
                     help="Enable a compose profile (repeatable; COMPOSE_PROFILES too)."),
        click.option("--image-map", "image_map", multiple=True, metavar="WRITTEN=INSTEAD", expose_value=False,
                     callback=_image_map, help="Run INSTEAD where a file names image WRITTEN (repeatable)."),
    ):  # fmt: skip
        func = option(func)
    return func


def playbooks_and_service(func: F) -> F:
    """PLAYBOOK... SERVICE (rollback, restart, logs, maintenance), with the options compose files take."""
    return compose_options(click.argument("args", nargs=-1, required=True, metavar="PLAYBOOK... SERVICE")(func))
