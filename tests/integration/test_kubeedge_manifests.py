"""KubeEdge's own v1beta1 manifest shapes load at the edge and drive the Modbus simulator:
kubeedge/examples `temperature-sensor-demo` (model type names as `dataType`, a string port,
`communicateMode`, `min`/`max`, integer cycles, `methods`), cycles of 1e10 ms, a STREAM property
and a `dbMethod` push (served by no kedge mapper: said, not ignored)."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.support import EdgeProcess, Mosquitto, Proc, free_port, port_open, running, wait_for

# written after kubeedge/examples temperature-sensor-demo/crds/temperature-{model,instance}.yaml
MODEL = """
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata:
  name: temperature-model
  namespace: default
spec:
  protocol: modbus
  properties:
    - name: temperature
      description: actual temperature
      type: FLOAT
      accessMode: ReadWrite
      minimum: "0"
      maximum: "100.0"
      unit: "Celsius"
    - name: temperature-switch
      description: "the switch of device 0:off,1:on"
      type: INT
      accessMode: ReadWrite
    - name: frame
      type: STREAM
      accessMode: ReadOnly
"""
INSTANCE = """
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: temperature-instance
spec:
  deviceModelRef:
    name: temperature-model
  protocol:
    protocolName: modbus
    configData:
      communicateMode: "TCP"
      port: "PORT"
      slaveID: 1
      ip: "127.0.0.1"
  nodeName: "edge-node-1"
  properties:
    - name: temperature
      visitors:
        protocolName: modbus
        configData:
          dataType: "float"
          register: "HoldingRegister"
          offset: 0
          limit: 1
          scale: 0.1
          isSwap: false
          isRegisterSwap: false
          max: 100.0
          min: 1.0
      collectCycle: 10000
      reportCycle: 10000
      reportToCloud: true
      pushMethod:
        dbMethod:
          influxdb2:
            influxdb2ClientConfig: {url: "http://127.0.0.1:8086", org: demo, bucket: demo}
            influxdb2DataConfig: {measurement: temperature, fieldKey: value}
    - name: temperature-switch
      collectCycle: 10000000000
      reportCycle: 10000000000
      reportToCloud: true
      desired:
        value: "1"
      visitors:
        protocolName: modbus
        configData:
          dataType: "int"
          register: "CoilRegister"
          offset: 0
          limit: 1
          scale: 1
          isSwap: false
          isRegisterSwap: false
    - name: frame
      visitors:
        protocolName: modbus
        configData: {register: InputRegister, offset: 0}
  methods:
    - name: SwitchControl
      description: control the switch of the device
      propertyNames:
        - temperature-switch
"""
DEV = "default/temperature-instance"


def test_the_temperature_sensor_demo_loads_and_drives_the_simulator(
    tmp_path: Path, broker: Mosquitto
) -> None:
    port = free_port()
    simulator = Proc([sys.executable, "-m", "simulators.modbus", "--port", str(port)],
                     tmp_path / "simulator.log").start()  # fmt: skip
    wait_for(lambda: port_open(port), what="Modbus simulator")
    manifest = tmp_path / "temperature.yaml"
    manifest.write_text(MODEL + "---" + INSTANCE.replace("PORT", str(port)))
    edge = EdgeProcess(tmp_path / "state", mqtt_url=broker.url, devices=[manifest])
    mapper = Proc([sys.executable, "-m", "mappers.modbus", "--node", "edge-node-1", "--mqtt",
                   broker.url], tmp_path / "mapper.log")  # fmt: skip
    try:
        with running(edge):
            mapper.start()

            def twin(prop: str) -> dict[str, object]:
                return edge.twin(DEV, prop)

            # the holding register holds the whole-degree set-point (21): raw x 0.1
            wait_for(lambda: (twin("temperature")["reported"] or {}).get("value") == "2.1",
                     timeout=30, what="the scaled register")  # fmt: skip
            # desired "1" on a coil with dataType int: written, read back as 1
            wait_for(lambda: twin("temperature-switch")["inSync"], timeout=30, what="the switch")
            assert twin("temperature-switch")["reported"]["value"] == "1"  # type: ignore[index]
            # what no kedge mapper serves is said, not silently dropped
            wait_for(lambda: "STREAM" in str(twin("frame")["error"]), timeout=30,
                     what="the STREAM property marked")  # fmt: skip
            wait_for(lambda: "dbMethod (influxdb2)" in str(twin("temperature")["error"]),
                     timeout=30, what="the dbMethod push marked")  # fmt: skip
            assert edge.get(f"/v1/devices/{DEV}").json()["state"] == "online"
            # the visitor's max bounds writes; 0 switches the coil off
            put = edge.put(f"/v1/devices/{DEV}/twin/temperature/desired", json={"value": "99.5"})
            assert put.status_code == 200
            put = edge.put(f"/v1/devices/{DEV}/twin/temperature-switch/desired",
                           json={"value": "0"})  # fmt: skip
            assert put.status_code == 200
            wait_for(lambda: (twin("temperature-switch")["reported"] or {}).get("value") == "0",
                     timeout=30, what="the switch off")  # fmt: skip
        logs = (tmp_path / "mapper.log").read_text()
        assert logs.count("pushMethod dbMethod (influxdb2) is not supported") == 1  # logged once
    finally:
        mapper.stop()
        simulator.stop()
