"""Simulated devices per protocol: not built yet."""
