"""The Kubernetes CRI, runtime.v1, from our own `cri_v1.proto` (upstream's names and field
numbers, the subset edged uses). `pb` holds the messages, `services` the stubs."""

from __future__ import annotations

from pathlib import Path

from kedge.protoload import load

pb, services = load(Path(__file__).parent, "cri_v1.proto")
