"""The closed set of plan steps. A Plan is data: what `plan` prints is exactly what `apply` runs.

`steps` (one host's steps), `rollout` (gates, replacements, jobs, rollouts), `plan` (the whole)."""

from pushorch.actions.plan import Plan
from pushorch.actions.rollout import Gate, GateKind, JobRun, Order, ReplaceContainer, Rollout
from pushorch.actions.steps import (
    Action,
    CreateNetwork,
    DeleteKv,
    EnsurePath,
    InstallDocker,
    PathState,
    PullImage,
    ReloadConsul,
    ReloadMode,
    RemoveConsul,
    RemoveContainer,
    RemoveNetwork,
    RestartContainer,
    RunCommand,
    ShipImage,
    StartDocker,
    StopContainer,
    WriteConsul,
    WriteFile,
    WriteKv,
)

__all__ = [
    "Action",
    "CreateNetwork",
    "DeleteKv",
    "EnsurePath",
    "Gate",
    "GateKind",
    "InstallDocker",
    "JobRun",
    "Order",
    "PathState",
    "Plan",
    "PullImage",
    "ReloadConsul",
    "ReloadMode",
    "RemoveConsul",
    "RemoveContainer",
    "RemoveNetwork",
    "ReplaceContainer",
    "RestartContainer",
    "Rollout",
    "RunCommand",
    "ShipImage",
    "StartDocker",
    "StopContainer",
    "WriteConsul",
    "WriteFile",
    "WriteKv",
]
