"""What a protocol plug-in says about itself, once, in its mapper package (`PROTOCOL` in
`mappers/<name>/__init__.py`). Everything else that names protocols derives from the list in
`mappers.registry`: the command line, the process runtime's image table, `kedge up`'s
simulators and samples, the driver conformance suite. Pure: a protocol's library stack is
imported only when its driver factory is built.

Conventions that need no declaration: the mapper runs as `python -m mappers.<name>` (image
`kedge/mapper-<name>`), its simulator is `simulators/<name>.py` with `main(argv, prog)` (image
`kedge/simulator-<name>`), its sample is `crds/samples/<name>.yaml`, its DaemonSet
`deploy/mappers/<name>.yaml`, its conformance case `tests/conformance/<name>.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mappers.driver import DriverFactory


@dataclass(frozen=True, slots=True)
class Protocol:
    name: str  # as in a Device's spec.protocol.protocolName
    title: str  # what its bundled simulator is, for `kedge simulate --help`
    drivers: Callable[[], DriverFactory]  # one factory per mapper process (it holds the pools)
    port: int  # its simulator's default port
    sample_address: str  # how crds/samples/<name>.yaml names the simulator, "{}" for the port

    def address(self, port: int) -> str:
        """The sample's address text for a simulator on `port`."""
        return self.sample_address.format(port)
