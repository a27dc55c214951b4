"""Edge process: twins over MQTT (EventBus, supervised mosquitto), the HTTP API, the channel to
the cloud (intake, upstream), MetaManager and edged (pods)."""
