"""Kubernetes' remotecommand websocket protocols, as both the API server and CloudStream speak
them (`v5.channel.k8s.io`, `v4.channel.k8s.io`): every binary frame starts with its channel."""

from __future__ import annotations

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORT_FORWARD = "SPDY/3.1+portforward.k8s.io"  # kubectl's port-forward: SPDY inside a websocket
# the same between the API server and CloudStream ("/" is not allowed in a subprotocol token)
PORT_FORWARD_RELAYED = "spdy.portforward.kedge.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def choose(offered: list[str]) -> str | None:
    """The first protocol the client offers that is served here."""
    return next((p for p in offered if p in PROTOCOLS), None)
