"""The member spec is one type on both sides: what the edge's parser writes, a mapper reads back
field for field; what a mapper receives from KubeEdge-style specs with fields missing takes the
defaults."""

from __future__ import annotations

from pathlib import Path

from devicetwin.catalog import Catalog
from devicetwin.manifests import read_documents
from devicetwin.memberspec import DEFAULT_CYCLE_MS, PropertyConfig
from devicetwin.spec import mapper_spec

SAMPLES = Path(__file__).parents[3] / "crds" / "samples"


def test_every_sample_property_round_trips_through_the_wire_shape() -> None:
    docs = [doc for path in sorted(SAMPLES.glob("*.yaml")) for doc in read_documents(path)]
    devices = Catalog("edge-node-1", docs, 0).bound()
    assert devices
    for device in devices:
        for raw in mapper_spec(device.spec)["properties"]:
            prop = PropertyConfig.from_spec(raw)
            assert prop.to_spec() == raw
            assert prop.protocol == device.protocol


def test_missing_fields_take_the_defaults() -> None:
    prop = PropertyConfig.from_spec({"name": "t"})
    assert (prop.type, prop.access_mode, prop.collect_cycle_ms, prop.report_to_cloud) == (
        "string", "ReadWrite", DEFAULT_CYCLE_MS, True)  # fmt: skip
    assert PropertyConfig.from_spec({"name": "t", "minimum": "nan"}).minimum is None
