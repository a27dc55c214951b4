"""Pod networking for edgecore's own containerd: one CNI bridge per node (bridge + host-local from
Debian's containernetworking-plugins), a private /24 chosen from the state dir, and what the
bridge plugin changes on the host undone on stop (the bridge itself, `net.ipv4.ip_forward`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
from pathlib import Path

from kedge.process import write_private

FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


class PodNetwork:
    def __init__(self, state_dir: Path, conf_dir: Path) -> None:
        digest = hashlib.sha256(str(state_dir.absolute()).encode()).digest()
        self.bridge = f"kedge{digest.hex()[:8]}"  # at most 15 characters (IFNAMSIZ)
        self.subnet = f"10.{100 + digest[0] % 100}.{digest[1]}.0/24"
        self.conf_dir, self.data = conf_dir, state_dir / "cni"
        self._saved = self.data / "ip_forward.before"  # survives a killed edgecore

    def write(self) -> None:
        """The network's config (containerd reads it before each sandbox); ip_forward as the
        host had it, kept until it is restored (a crashed run's value is not the host's)."""
        self.data.mkdir(parents=True, exist_ok=True)
        if not self._saved.exists() and FORWARD.exists():
            write_private(self._saved, FORWARD.read_text().strip())
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        conflist = {"cniVersion": "1.0.0", "name": "kedge", "plugins": [{
            "type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                     "dataDir": str(self.data / "ipam")}}]}  # fmt: skip
        write_private(self.conf_dir / "10-kedge.conflist", json.dumps(conflist))

    def remove(self) -> None:
        """After the last sandbox went: the bridge, and ip_forward as it was."""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, timeout=10)
        if self._saved.exists():
            with contextlib.suppress(OSError):
                FORWARD.write_text(self._saved.read_text())
                self._saved.unlink()
