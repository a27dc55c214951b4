"""Bringing simulated ZigBee devices into a mapper's network, as a user pairs them."""

from __future__ import annotations

import zigpy.types as t

from harness.support import wait_until
from mappers.zigbee.network import Network
from simulators.zigbee import ZigbeeSimulator


async def joined_network(network: Network, sim: ZigbeeSimulator, within: float = 10.0) -> None:
    """Permit joining, as the permitJoin property does, and wait until every device is
    interviewed."""
    await network.permit(60)
    app = await network.application()

    def interviewed() -> bool:
        ieees = {t.EUI64(d.ieee) for d in sim.devices}
        return all(i in app.devices and app.devices[i].is_initialized for i in ieees)

    await wait_until(interviewed, within, "simulated ZigBee devices to be interviewed")
