"""Protocol mappers: one runtime (MQTT, polling, deltas, device state, push) and a plug-in per
protocol (`mappers.registry`), each a driver that talks only to its device."""
