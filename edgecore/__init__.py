"""Edge process: EventBus (MQTT), supervised broker, twin service shell, HTTP API."""
