"""pushorch: an agentless push orchestrator for Docker services over SSH."""

__version__ = "0.1.0"
