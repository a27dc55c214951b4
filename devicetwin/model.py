"""Twin data model shared by the rules, the store and the edge API.

Values are frozen so the pure rules in `devicetwin.rules` can hand back new objects and the
shell decides what to persist and publish. Everything a device sends is a string; `type` says
how to read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, NewType

DeviceId = NewType("DeviceId", str)  # "<namespace>/<name>", KubeEdge v1.16+
NodeId = NewType("NodeId", str)

TWIN_TYPES = ("int", "float", "double", "boolean", "string", "bytes", "stream")
TYPE_ALIASES = {"integer": "int", "bool": "boolean"}
DEVICE_STATES = ("online", "offline", "ok", "unknown", "unhealthy", "disconnected")
ONLINE_STATES = ("online", "ok")


class Version(NamedTuple):
    """KubeEdge's version vector: how many writes each side has made to a value.

    A NamedTuple rather than a frozen dataclass: several are built per update, and tuple
    construction is several times cheaper.
    """

    cloud: int = 0
    edge: int = 0

    def bump_edge(self) -> Version:
        return Version(self.cloud, self.edge + 1)

    def to_json(self) -> dict[str, int]:
        return {"cloud": self.cloud, "edge": self.edge}


class TwinValue(NamedTuple):
    """One side of a twin: the value as a string and when it was written (ms since epoch)."""

    value: str
    timestamp: int


class Attempt(NamedTuple):
    """What a mapper did with a desired value: wrote it (`error` empty) or failed, and why.

    Lets the edge tell a device that did not take a value (clamped, rounded, refused) from a
    mapper that has not acted yet, without guessing from timing.
    """

    desired: str
    error: str = ""


class Twin(NamedTuple):
    """Desired (`expected`) and reported (`actual`) state of one device property.

    `observed_desired` is the desired value that was in force when `actual` was last reported,
    so a reader can tell whether a reading already reflects the latest set-point. Immutable;
    a NamedTuple because one is built per update on the ingest path.
    """

    name: str
    type: str = "string"
    optional: bool = True
    deleted: bool = False
    expected: TwinValue | None = None
    actual: TwinValue | None = None
    observed_desired: TwinValue | None = None
    expected_version: Version = Version()
    actual_version: Version = Version()
    description: str = ""
    attempt: Attempt | None = None  # the mapper's last write of a desired value
    error: str = ""  # why the mapper cannot serve the property ("" when it can)
    # a cloud desired value the edge kept its own over (the conflict rule), and when
    overruled: TwinValue | None = None

    def has_delta(self) -> bool:
        """True when a mapper still has to bring the device to the desired value."""
        if self.deleted or self.expected is None or self.expected.value == "":
            return False
        return self.actual is None or self.actual.value != self.expected.value


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """What the device model says about a property; drives validation of writes."""

    name: str
    type: str = "string"
    access_mode: str = "ReadWrite"
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Device:
    """A device bound to this edge node, with its twins keyed by property name."""

    id: DeviceId
    name: str
    namespace: str
    description: str = ""
    state: str = "unknown"
    last_online: str = ""
    protocol: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    properties: dict[str, PropertySpec] = field(default_factory=dict)
    twins: dict[str, Twin] = field(default_factory=dict)
    spec: dict[str, object] = field(default_factory=dict)
    # per property, the edge's desired-write count the cloud had seen when it declared this
    # device (annotation EDGE_VERSIONS); None for manifests, whose changes always apply
    seen_edge: dict[str, int] | None = None


def device_id(namespace: str, name: str) -> DeviceId:
    return DeviceId(f"{namespace}/{name}")
