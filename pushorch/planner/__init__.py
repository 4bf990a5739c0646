"""The planner (pure): plan.py (the loop over hosts), tasks.py, services.py (one service on one host),
placement.py (where instances run), rollout.py (gates and batches), rollback.py; labels.py names the labels."""

from pushorch.planner.placement import Memory, placements
from pushorch.planner.plan import Options, plan

__all__ = ["Memory", "Options", "placements", "plan"]
