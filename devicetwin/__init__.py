"""Edge device twins: the twin model and rules (pure), the SQLite store, the MQTT contract."""
