"""Simulated devices per protocol, sharing one pure behaviour model (`thermostat.py`)."""
