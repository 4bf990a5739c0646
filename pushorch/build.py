"""Images built on the controller (`build:`): `docker build` for each image the spec names that the
controller's Docker does not have yet (its tag is a digest of the context, so an unchanged context
builds nothing), then `docker push` for services that pull; `source: ship` sends it over SSH later."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable

from pushorch.errors import CommandFailed
from pushorch.events import Event
from pushorch.spec import Build, Spec


def wanted(spec: Spec) -> dict[str, tuple[Build, bool]]:
    """image -> (its build, whether hosts pull it from the registry)."""
    found: dict[str, tuple[Build, bool]] = {}
    for host in spec.hosts.values():
        for play in host.plays:
            for service in play.services:
                if service.build is not None:
                    pulled = found.get(service.image, (service.build, False))[1] or service.source == "pull"
                    found[service.image] = (service.build, pulled)
    return found


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CommandFailed("controller", what, done.returncode, done.stderr or done.stdout)


def _have(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode == 0


def _build(image: str, build: Build, push: bool) -> bool:
    """Build (and push) one image unless the controller has it; whether it built."""
    if _have(image):
        return False
    argv = ["docker", "build", "-t", image, "-f", f"{build.context}/{build.dockerfile}"]
    argv += [x for k, v in sorted(build.args.items()) for x in ("--build-arg", f"{k}={v}")]
    argv += ["--target", build.target] if build.target else []
    _run([*argv, build.context], f"docker build {image}")
    if push:
        _run(["docker", "push", image], f"docker push {image}")
    return True


async def ensure_images(spec: Spec, emit: Callable[[Event], None]) -> None:
    """Every built image present on the controller (and in its registry when hosts pull it)."""
    for image, (build, push) in wanted(spec).items():
        if await asyncio.to_thread(_build, image, build, push):
            emit(
                Event("", "progress", None, f"built {image} from {build.context}" + (" and pushed it" if push else ""))
            )
