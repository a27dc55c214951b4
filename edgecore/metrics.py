"""Prometheus metrics of one edgecore, in a registry of its own (tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kedge_mqtt_requests",
            "MQTT requests handled, by action and result code",
            ["action", "code"],
            registry=self.registry,
        )
        self.published = Counter(
            "kedge_mqtt_published", "MQTT messages published by the edge", registry=self.registry
        )
        self.http_desired = Counter(
            "kedge_http_desired_writes",
            "Edge-local desired writes over HTTP, by result code",
            ["code"],
            registry=self.registry,
        )
        self.mqtt_connected = Gauge(
            "kedge_mqtt_connected", "1 while connected to the MQTT broker", registry=self.registry
        )
        self.devices = Gauge("kedge_devices", "Devices bound to this node", registry=self.registry)
        self.store_commits = Gauge(
            "kedge_twin_store_commits",
            "SQLite transactions committed by the twin store",
            registry=self.registry,
        )
        self.store_rows = Gauge(
            "kedge_twin_store_rows",
            "Rows written by those transactions (after merging)",
            registry=self.registry,
        )
        self.broker_restarts = Gauge(
            "kedge_broker_restarts",
            "Times the supervised mosquitto was restarted",
            registry=self.registry,
        )
