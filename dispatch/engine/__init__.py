"""The incident engine: a pure step (step.py) under a shell that leads, reads and writes
(leader.py)."""

from dispatch.engine.leader import Engine

__all__ = ["Engine"]
