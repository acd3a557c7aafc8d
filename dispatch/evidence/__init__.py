"""Trajectories as evidence: sealed archive segments, per-incident packages, verification."""
