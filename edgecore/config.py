"""edgecore settings from a YAML config file and command-line flags (flags win)."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kedge.errors import PermanentError
from kedge.mqtt import DEFAULT_PORT as DEFAULT_MQTT_PORT
from kedge.mqtt import MqttSettings, parse_mqtt_url
from kedge.process import SOCKET_PATH_MAX

DEFAULT_HTTP = "127.0.0.1:10550"
# every setting, by its name in the config file and on the command line (as --flag-name)
SETTINGS = (
    "node", "state_dir", "mqtt", "broker", "http", "devices", "log_level", "cloud", "cloud_certs",
    "token", "join", "heartbeat", "labels", "pod_backoff", "http_auth", "max_optional_twins",
    "dmi_socket", "dmi_worker", "broker_anonymous", "runtime", "cri_endpoint", "cri_images",
    "history_max_age", "history_max_points",
)  # fmt: skip
DMI_SOCKET = "dmi.sock"  # under the state dir; KubeEdge's is /etc/kubeedge/dmi.sock
JOIN_PORT = 10002
TEN_YEARS = 10 * 365 * 86400.0


class ConfigError(PermanentError):
    """Settings that cannot work; the message says which setting and why."""


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    node: str
    state_dir: Path
    mqtt: MqttSettings | None = None  # None: supervise a local mosquitto on `broker_port`
    broker_port: int = DEFAULT_MQTT_PORT
    http_host: str = "127.0.0.1"
    http_port: int = 10550
    devices: list[Path] = field(default_factory=list)
    log_level: str = "info"
    cloud: str | None = None  # CloudHub, wss://host:port (comma-separated: replicas)
    cloud_certs: Path | None = None  # ca.crt, node.crt, node.key
    token: str | None = None  # join token: gets a node certificate when there is none
    join: str | None = None  # join service, https://host:10002
    heartbeat: float = 10.0  # seconds between node heartbeats to the cloud
    labels: dict[str, str] = field(default_factory=dict)  # extra labels for the Node
    pod_backoff: float = 10.0  # seconds: CrashLoopBackOff's first delay (then doubling)
    http_auth: str = "auto"  # token | none | auto: a token when listening beyond loopback
    max_optional_twins: int = 64  # twins a client may create on a device beyond its model's
    dmi_socket: Path | None = None  # where DMI mappers register; None: DMI off
    dmi_off_reason: str = ""  # why DMI is off, when it is
    dmi_worker: bool = False  # DMI's gRPC served by a worker process (a second core)
    broker_anonymous: bool = False  # the local broker also takes anonymous loopback clients
    runtime: str = "process"  # pods as host processes, or containers through CRI ("cri")
    cri_endpoint: str | None = None  # an existing CRI runtime; None: edgecore's own containerd
    cri_images: list[Path] = field(default_factory=list)  # archives imported at start
    history_max_age: float = 7 * 86400.0  # seconds reported values are kept (0: no history)
    history_max_points: int = 200_000  # reported values kept per device property

    @property
    def http_needs_token(self) -> bool:
        loopback = self.http_host in ("127.0.0.1", "::1", "localhost")
        return self.http_auth == "token" or (self.http_auth == "auto" and not loopback)


def _mqtt(url: str) -> MqttSettings:
    try:
        return parse_mqtt_url(url)
    except ValueError as exc:
        raise ConfigError(f"mqtt: {exc}") from exc


def _parse_port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{what}: {text!r} is not a TCP port")
    return int(text)


def parse_broker(spec: str) -> int:
    """`local` or `local:PORT` -> the port of the supervised mosquitto."""
    name, _, port = spec.partition(":")
    if name != "local":
        raise ConfigError(f"broker: {spec!r} is not local or local:PORT (use --mqtt for others)")
    return _parse_port(port, "broker") if port else DEFAULT_MQTT_PORT


def parse_http(spec: str) -> tuple[str, int]:
    host, sep, port = spec.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"http: {spec!r} is not HOST:PORT")
    return host, _parse_port(port, "http")


LABEL = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def parse_labels(spec: str | dict[str, Any]) -> dict[str, str]:
    """`k=v,k2=v2` (flag) or a mapping (file) -> labels, each checked as Kubernetes does."""
    if isinstance(spec, str):
        pairs = [item.partition("=") for item in spec.split(",") if item]
        if any(not sep for _, sep, _ in pairs):
            raise ConfigError(f"labels: {spec!r} is not k=v[,k=v...]")
        spec = {key: value for key, _, value in pairs}
    if not isinstance(spec, dict):
        raise ConfigError("labels: must be a mapping of label names to values")
    for key, value in spec.items():
        if not isinstance(key, str) or not LABEL.fullmatch(key) or len(key) > 317:
            raise ConfigError(f"labels: {key!r} is not a label name")
        if not isinstance(value, str) or not LABEL_VALUE.fullmatch(value) or len(value) > 63:
            raise ConfigError(f"labels: {key}={value!r} is not a label value")
    return dict(spec)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file with the same keys as the flags")
    parser.add_argument("--node", help="name of this edge node")
    parser.add_argument("--state-dir", type=Path, help="where the twin database lives")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--mqtt", help="external broker, mqtt://[user:password@]host[:port]")
    group.add_argument("--broker", help="supervise a local mosquitto: local[:PORT]")
    parser.add_argument("--http", help=f"edge HTTP API address (default {DEFAULT_HTTP})")
    parser.add_argument(
        "--devices",
        type=Path,
        nargs="+",
        action="extend",
        help="DeviceModel/Device YAML files for this node",
    )
    parser.add_argument(
        "--cloud", help="CloudHub to join, wss://host:port; several cloudcore replicas: "
        "wss://a:10000,wss://b:10000 (the node moves to the next when one fails or is full)",
    )  # fmt: skip
    parser.add_argument(
        "--cloud-certs",
        type=Path,
        help="directory with ca.crt, node.crt and node.key (default STATE_DIR/certs)",
    )
    parser.add_argument("--token", help="join token from `kedge token create`")
    parser.add_argument(
        "--join", help=f"join service, https://host:port (default the cloud's host, {JOIN_PORT})"
    )
    parser.add_argument(
        "--heartbeat", type=float, help="seconds between node heartbeats to the cloud (10)"
    )
    parser.add_argument("--labels", help="labels for this node's Node object: k=v[,k=v...]")
    parser.add_argument(
        "--pod-backoff", type=float, help="seconds before a crashed container's 2nd restart (10)"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--http-auth", choices=["auto", "token", "none"],
        help="bearer token for the HTTP API (STATE_DIR/http-token): always, never, or (auto, "
        "the default) when it listens beyond loopback",
    )  # fmt: skip
    _dmi_arguments(parser)
    _runtime_arguments(parser)
    parser.add_argument(
        "--broker-anonymous", action="store_true", default=None,
        help="the local broker also accepts anonymous clients on 127.0.0.1, as KubeEdge's edge "
        "does (confined to device and membership topics); off by default",
    )  # fmt: skip
    parser.add_argument(
        "--max-optional-twins", type=int,
        help="twins clients may create on a device beyond its model's properties (64)",
    )  # fmt: skip
    _history_arguments(parser)


def _dmi_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dmi-socket",
        help=f"Unix socket for KubeEdge DMI mappers (STATE_DIR/{DMI_SOCKET}; `off`: no DMI)",
    )
    parser.add_argument(
        "--dmi-worker", action="store_true", default=None,
        help="serve DMI's gRPC from a worker process: HTTP/2 on a second core, for mappers "
        "reporting thousands of twins a second (off: in edgecore's own loop)",
    )  # fmt: skip


def _history_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history-max-age", type=float,
        help="seconds every reported value is kept for history queries (a week; 0: no history)",
    )  # fmt: skip
    parser.add_argument(
        "--history-max-points", type=int,
        help="reported values kept per device property, the oldest go first (200000)",
    )  # fmt: skip


def _runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime", choices=["process", "cri"],
        help="pods as host processes (the default) or as containers through CRI",
    )  # fmt: skip
    parser.add_argument(
        "--cri-endpoint", "--remote-runtime-endpoint", dest="cri_endpoint",
        help="CRI runtime socket, unix:///path (default: a containerd edgecore runs itself)",
    )  # fmt: skip
    parser.add_argument(
        "--cri-images", type=Path, nargs="+", action="extend",
        help="OCI/docker image archives to import into the runtime at start (once each)",
    )  # fmt: skip


def _file_settings(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: must be a mapping of settings")
    unknown = set(data) - set(SETTINGS)
    if unknown:
        raise ConfigError(f"config {path}: unknown settings {sorted(unknown)}")
    return data


def _guards(merged: dict[str, Any]) -> tuple[str, int]:
    auth = merged.get("http_auth", "auto")
    if auth not in ("auto", "token", "none"):
        raise ConfigError(f"http_auth: {auth!r} is not auto, token or none")
    optional = merged.get("max_optional_twins", 64)
    if not isinstance(optional, int) or isinstance(optional, bool) or not 0 <= optional <= 1024:
        raise ConfigError(f"max_optional_twins: {optional!r} is not a number in 0..1024")
    return str(auth), optional


def _history(merged: dict[str, Any]) -> tuple[float, int]:
    age, points = merged.get("history_max_age", 7 * 86400.0), merged.get("history_max_points",
                                                                          200_000)  # fmt: skip
    if (
        not isinstance(age, int | float)
        or isinstance(age, bool)
        or not 0 <= age <= 10 * 365 * 86400
    ):
        raise ConfigError(f"history_max_age: {age!r} is not a number of seconds, 0 to ten years")
    if not isinstance(points, int) or isinstance(points, bool) or not 1 <= points <= 10**8:
        raise ConfigError(f"history_max_points: {points!r} is not a number in 1..100000000")
    return float(age), points


def _cloud(merged: dict[str, Any], state_dir: Path) -> tuple[Any, Any, Any, Any]:
    """(cloud, cloud_certs, token, join), checked together."""
    cloud = merged.get("cloud")
    if cloud is not None and (
        not isinstance(cloud, str) or not all(u.startswith("wss://") for u in cloud.split(","))
    ):
        raise ConfigError(f"cloud: {cloud!r} is not a wss:// URL (or a comma-separated list)")
    certs = merged.get("cloud_certs") or (state_dir / "certs" if cloud else None)
    token, join = merged.get("token"), merged.get("join")
    if (token or join) and not cloud:
        raise ConfigError("token and join: only with cloud (--cloud wss://host:port)")
    if token is not None and (not isinstance(token, str) or token.count(".") != 3):
        raise ConfigError("token: not a join token (<ca-hash>.<jwt>, from `kedge token create`)")
    if join is None and cloud:
        join = f"https://{urlsplit(cloud.split(',')[0]).hostname}:{JOIN_PORT}"
    if join is not None and (not isinstance(join, str) or not join.startswith("https://")):
        raise ConfigError(f"join: {join!r} is not an https:// URL")
    return cloud, Path(certs) if certs else None, token, join.rstrip("/") if join else None


def _dmi(merged: dict[str, Any], state_dir: Path) -> tuple[Path | None, str]:
    """(socket, why it is off): a given path must fit a socket address; the default is
    dropped, with its reason, when the state dir's path is too long for one."""
    raw = merged.get("dmi_socket")
    if raw == "off":
        return None, "turned off (dmi_socket: off)"
    path = Path(raw) if raw else state_dir.absolute() / DMI_SOCKET
    if len(str(path).encode()) <= SOCKET_PATH_MAX:
        return path, ""
    if raw:
        raise ConfigError(f"dmi_socket: {raw!r} is longer than {SOCKET_PATH_MAX} bytes")
    return None, f"{path} is longer than a socket path may be; give --dmi-socket"


def _runtime(merged: dict[str, Any]) -> tuple[str, str | None]:
    runtime = merged.get("runtime") or "process"
    if runtime not in ("process", "cri"):
        raise ConfigError(f"runtime: {runtime!r} is not process or cri")
    endpoint = merged.get("cri_endpoint")
    if endpoint is not None and (
        not isinstance(endpoint, str) or not endpoint.startswith("unix://")
    ):
        raise ConfigError(f"cri_endpoint: {endpoint!r} is not a unix:// socket")
    if endpoint and runtime != "cri":
        raise ConfigError("cri_endpoint: only with runtime cri (--runtime cri)")
    return str(runtime), endpoint


def _seconds(merged: dict[str, Any], key: str, default: float, cap: float) -> float:
    value = merged.get(key, default)
    if not isinstance(value, int | float) or not 0 < value <= cap:
        raise ConfigError(f"{key}: {value!r} is not a number of seconds in (0, {cap:g}]")
    return float(value)


def _merged(args: argparse.Namespace) -> dict[str, Any]:
    """The config file's settings, flags given over them; the required ones checked."""
    flags = {name: getattr(args, name) for name in SETTINGS}
    merged = {**_file_settings(args.config), **{k: v for k, v in flags.items() if v is not None}}
    if args.mqtt is not None or args.broker is not None:
        merged.pop("broker" if args.mqtt is not None else "mqtt", None)
    node = merged.get("node")
    if not isinstance(node, str) or not node:
        raise ConfigError("node: required (--node NAME)")
    if not merged.get("state_dir"):
        raise ConfigError("state_dir: required (--state-dir DIR)")
    if merged.get("mqtt") and merged.get("broker"):
        raise ConfigError("mqtt and broker: give one, not both")
    devices = merged.get("devices") or []
    if not isinstance(devices, list):
        raise ConfigError("devices: must be a list of files")
    return merged


def from_args(args: argparse.Namespace) -> EdgeConfig:
    """Merge the config file with flags and validate the result once."""
    merged = _merged(args)
    state_dir = Path(merged["state_dir"])
    host, port = parse_http(str(merged.get("http") or DEFAULT_HTTP))
    cloud, certs, token, join = _cloud(merged, state_dir)
    auth, optional = _guards(merged)
    dmi_socket, dmi_off = _dmi(merged, state_dir)
    runtime, endpoint = _runtime(merged)
    history_age, history_points = _history(merged)
    return EdgeConfig(
        history_max_age=history_age,
        history_max_points=history_points,
        runtime=runtime,
        cri_endpoint=endpoint,
        cri_images=[Path(p) for p in merged.get("cri_images") or []],
        dmi_socket=dmi_socket,
        dmi_off_reason=dmi_off,
        dmi_worker=bool(merged.get("dmi_worker")),
        broker_anonymous=bool(merged.get("broker_anonymous")),
        http_auth=auth,
        max_optional_twins=optional,
        heartbeat=_seconds(merged, "heartbeat", 10.0, 3600),
        pod_backoff=_seconds(merged, "pod_backoff", 10.0, 300),
        labels=parse_labels(merged.get("labels") or {}),
        cloud=cloud,
        cloud_certs=certs,
        token=token,
        join=join,
        node=merged["node"],
        state_dir=state_dir,
        mqtt=_mqtt(str(merged["mqtt"])) if merged.get("mqtt") else None,
        broker_port=parse_broker(str(merged.get("broker") or "local")),
        http_host=host,
        http_port=port,
        devices=[Path(p) for p in merged.get("devices") or []],
        log_level=str(merged.get("log_level") or "info"),
    )
