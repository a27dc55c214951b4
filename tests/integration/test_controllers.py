"""Controller building blocks against the embedded API server through the official client:
list+watch with resume and relist after 410, device routing, coalesced status writes."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from kubernetes import client

from controllers.devices import DeviceRouting
from controllers.informer import Informer
from controllers.status import StatusWriter, threaded
from harness.apiserver import ApiServerProcess
from harness.support import wait_until

G, V = "devices.kubeedge.io", "v1beta1"


def _device(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": f"{G}/{V}", "kind": "Device", "metadata": {"name": name},
            "spec": {"nodeName": node, "deviceModelRef": {"name": "m"}}}  # fmt: skip


async def test_routing_follows_the_api_through_informers(apiserver: ApiServerProcess) -> None:
    api = apiserver.api_client()
    custom = client.CustomObjectsApi(api)
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "routing"}})
    routing, held = DeviceRouting(), {}

    def apply(changes: list[Any]) -> None:
        for change in changes:
            if change.action == "upsert":
                held[change.key[1]] = change.node
            else:
                held.pop(change.key[1], None)

    def on_device(kind: str, obj: dict[str, Any]) -> None:
        if kind != "SYNCED":
            apply(routing.device_event(kind, obj)[0])

    def on_model(kind: str, obj: dict[str, Any]) -> None:
        if kind != "SYNCED":
            apply(routing.model_event(kind, obj)[0])

    loop = asyncio.get_running_loop()

    def lister(plural: str) -> Any:
        return functools.partial(custom.list_namespaced_custom_object, G, V, "routing", plural)

    devices = Informer("devices", lister("devices"), loop, on_device)
    models = Informer("models", lister("devicemodels"), loop, on_model)
    custom.create_namespaced_custom_object(G, V, "routing", "devices", _device("d1", "n1"))
    devices.start()
    models.start()
    try:
        model = {"apiVersion": f"{G}/{V}", "kind": "DeviceModel", "metadata": {"name": "m"}}
        custom.create_namespaced_custom_object(G, V, "routing", "devicemodels", model)
        await wait_until(lambda: held == {"d1": "n1"}, what="d1 placed once its model exists")
        moved = {"spec": {"nodeName": "n2"}}
        custom.patch_namespaced_custom_object(G, V, "routing", "devices", "d1", moved)
        await wait_until(lambda: held == {"d1": "n2"}, what="d1 moved")
        for n in range(30):  # more changes than the server's 20-change history: 410, relist
            label = {"metadata": {"labels": {"n": str(n)}}}
            custom.patch_namespaced_custom_object(G, V, "routing", "devicemodels", "m", label)
        custom.create_namespaced_custom_object(G, V, "routing", "devices", _device("d2", "n1"))
        custom.delete_namespaced_custom_object(G, V, "routing", "devices", "d1")
        await wait_until(lambda: held == {"d2": "n1"}, what="d2 added, d1 removed")
    finally:
        devices.stop()
        models.stop()
        api.close()


async def test_status_writes_coalesce_and_skip_unchanged(apiserver: ApiServerProcess) -> None:
    api = apiserver.api_client()
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(G, V, "default", "devices", _device("flood", "n1"))

    def write(namespace: str, name: str, status: dict[str, Any]) -> None:
        body = {"status": status}
        custom.patch_namespaced_custom_object_status(G, V, namespace, "devices", name, body)

    writer = StatusWriter(threaded(write), interval=0.2)
    task = asyncio.create_task(writer.run())
    acked: list[int] = []

    def ack(n: int) -> Any:
        async def done() -> None:
            acked.append(n)

        return done

    try:
        for n in range(200):  # a flood: 200 reports in a moment
            writer.report(("default", "flood"), {"state": "online", "twins": [
                {"propertyName": "t", "reported": {"value": str(n)}}]}, ack(n))  # fmt: skip
            await asyncio.sleep(0)

        def latest() -> bool:
            got = custom.get_namespaced_custom_object(G, V, "default", "devices", "flood")
            twins = got.get("status", {}).get("twins", [{}])
            return bool(twins[0].get("reported", {}).get("value") == "199")

        await wait_until(latest, what="latest status written")
        assert writer.writes <= 3  # the first report, then the newest after the interval
        await wait_until(lambda: len(acked) == 200, what="every report acked once stored")
        assert sorted(acked) == list(range(200))
        before = writer.writes
        writer.report(("default", "flood"), {"state": "online", "twins": [
            {"propertyName": "t", "reported": {"value": "199"}}]})  # fmt: skip
        await wait_until(lambda: writer.pending == 0, what="the unchanged report handled")
        assert writer.writes == before  # equal to what was written: no API call
    finally:
        task.cancel()
        api.close()
