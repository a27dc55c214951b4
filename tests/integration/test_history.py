"""Telemetry history at the edge, over a real edgecore and mosquitto: every reported value comes
back in order (also after `kill -9`), steps aggregate, bad queries get 400, unknown ones 404."""

from __future__ import annotations

from harness.support import EdgeProcess, MqttProbe

DEV = "default/thermostat-1"
T = f"$hw/events/device/{DEV}"
HISTORY = f"/v1/devices/{DEV}/twin/temperature/history"


def test_reported_values_come_back_in_order_and_survive_kill_9(
    edge: EdgeProcess, probe: MqttProbe
) -> None:
    for value in ("20.5", "21", "21", "22.5"):
        probe.request(f"{T}/twin/update", {"twin": {"temperature": {"actual": {"value": value}}}})
    answer = edge.get(HISTORY).json()
    assert [p["v"] for p in answer["points"]] == ["20.5", "21", "21", "22.5"]
    stamps = [p["t"] for p in answer["points"]]
    assert stamps == sorted(stamps) and answer["step"] == 0 and not answer["truncated"]
    edge.kill()
    edge.start()
    again = edge.get(HISTORY).json()["points"]
    assert [p["v"] for p in again] == ["20.5", "21", "21", "22.5"]
    hourly = edge.get(f"{HISTORY}?step=1h&since=0").json()["points"]
    assert sum(p["count"] for p in hourly) == 4 and min(p["min"] for p in hourly) == 20.5
    assert max(p["max"] for p in hourly) == 22.5
    assert edge.get(f"{HISTORY}?since={stamps[1]}&until={stamps[3]}").json()["points"] == [
        {"t": stamps[1], "v": "21"}, {"t": stamps[2], "v": "21"}]  # fmt: skip
    assert edge.get(f"{HISTORY}?since=2020-01-01T00:00:00Z").json()["points"] == again


def test_bad_history_queries_are_refused(edge: EdgeProcess) -> None:
    for query in ("since=yesterday", "step=0", "step=5x", "since=2030-01-01T00:00:00Z&until=1",
                  "since=2020-01-01T00:00:00", "until=" + "9" * 40, "step=999999999999d",
                  "since=2030-13-01T00:00:00Z"):  # fmt: skip
        answer = edge.get(f"{HISTORY}?{query}")
        assert answer.status_code == 400, query
        assert answer.json().get("reason"), query
    assert edge.get(f"/v1/devices/{DEV}/twin/nothing/history").status_code == 404
    assert edge.get("/v1/devices/default/nobody/twin/temperature/history").status_code == 404
