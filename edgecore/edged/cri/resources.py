"""A container's `resources` as CRI's Linux resources, as kubelet maps them. Pure.

memory limit -> memory_limit_in_bytes; cpu limit -> CFS quota over a 100 ms period; cpu request
-> shares (1024 per core, at least 2). Quantities in Kubernetes' notation (`64Mi`, `500m`, `1.5`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kedge.cri import pb

PERIOD = 100_000  # microseconds
_QUANTITY = re.compile(r"^([+]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?\Z")
_SUFFIX = {
    None: Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
    "P": Decimal(10**15), "E": Decimal(10**18), "Ki": Decimal(2**10), "Mi": Decimal(2**20),
    "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}  # fmt: skip


def quantity(raw: Any, what: str) -> Decimal:
    """A Kubernetes quantity; ValueError naming `what` when it is not one."""
    match = _QUANTITY.match(str(raw).strip()) if isinstance(raw, (str, int, float)) else None
    if match is None or isinstance(raw, bool):
        raise ValueError(f"{what}: {raw!r} is not a quantity")
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation as exc:
        raise ValueError(f"{what}: {raw!r} is not a quantity") from exc


def linux_resources(resources: Mapping[str, Any]) -> Any:
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    out = pb.LinuxContainerResources()
    if "memory" in limits:
        out.memory_limit_in_bytes = int(quantity(limits["memory"], "limits.memory"))
    if "cpu" in limits:
        cores = quantity(limits["cpu"], "limits.cpu")
        out.cpu_period, out.cpu_quota = PERIOD, max(1000, int(cores * PERIOD))
    cpu = requests.get("cpu", limits.get("cpu"))
    if cpu is not None:
        out.cpu_shares = max(2, int(quantity(cpu, "requests.cpu") * 1024))
    return out
