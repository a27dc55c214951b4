"""Every protocol plug-in in the registry brings all its parts, and everything that names
protocols derives from the registry: the command line, the image table, kedge up's simulators
and samples. A fifth protocol that forgets a part fails here, naming it."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

import pytest
import yaml

from edgecore.edged.images import IMAGES
from harness.support import ROOT
from kedge.cli import build_parser
from mappers.registry import PLUGINS, PROTOCOLS, driver_factory

NAMES = sorted(PROTOCOLS)


@pytest.mark.parametrize("name", NAMES)
def test_a_plugin_brings_every_part(name: str) -> None:
    plugin = PROTOCOLS[name]
    assert importlib.util.find_spec(f"mappers.{name}.__main__") is not None, "mapper entry point"
    simulator = importlib.import_module(f"simulators.{name}")
    assert callable(simulator.add_arguments) and callable(simulator.serve_from), "simulator"
    sample = (ROOT / "crds" / "samples" / f"{name}.yaml").read_text()
    assert plugin.address(plugin.port) in sample, "the sample names the simulator's address"
    protocols = {
        ((d.get("spec") or {}).get("protocol") or {}).get("protocolName")
        for d in yaml.safe_load_all(sample) if d and d.get("kind") == "Device"
    }  # fmt: skip
    assert protocols == {name}
    deploy = (ROOT / "deploy" / "mappers" / f"{name}.yaml").read_text()
    assert f"kedge/mapper-{name}" in deploy, "the mapper DaemonSet runs the plug-in's image"
    assert (ROOT / "tests" / "conformance" / f"{name}.py").exists(), "conformance case"
    assert callable(driver_factory(name)), "driver factory"


def test_names_are_unique_and_images_follow_the_registry() -> None:
    assert len({p.name for p in PLUGINS}) == len(PLUGINS)
    assert len({p.port for p in PLUGINS}) == len(PLUGINS), "simulators need distinct ports"
    assert {i.removeprefix("kedge/mapper-") for i in IMAGES if i.startswith("kedge/mapper-")} == (
        set(NAMES)
    )
    assert {i.removeprefix("kedge/simulator-") for i in IMAGES
            if i.startswith("kedge/simulator-")} == set(NAMES)  # fmt: skip


def test_the_command_line_offers_every_plugin() -> None:
    parser = build_parser()
    for name in NAMES:
        assert parser.parse_args(["simulate", name]).protocol == name
        assert parser.parse_args(["mapper", name, "--node", "n", "--mqtt", "mqtt://h"]).protocol
    helped = subprocess.run([sys.executable, "-m", "kedge", "simulate", NAMES[0], "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert helped.returncode == 0 and "--port" in helped.stdout


def test_an_unknown_protocol_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no mapper for protocol 'canbus'"):
        driver_factory("canbus")
