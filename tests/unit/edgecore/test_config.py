"""edgecore settings: config file and flags merge (flags win); bad settings name themselves."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from edgecore.config import ConfigError, add_arguments, from_args
from kedge.mqtt import MqttSettings


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_config_file_when_given_supplies_settings_and_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(
        "node: from-file\nstate_dir: /var/kedge\nmqtt: mqtt://u:p%40ss@broker:1884\n"
        "http: 0.0.0.0:9000\ndevices: [a.yaml, b.yaml]\n"
    )
    settings = from_args(parse(["--config", str(config), "--node", "from-flag"]))
    assert settings.node == "from-flag"
    assert settings.state_dir == Path("/var/kedge")
    assert settings.mqtt == MqttSettings("broker", 1884, "u", "p@ss")
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 9000)
    assert settings.devices == [Path("a.yaml"), Path("b.yaml")]


def test_broker_flag_when_file_names_mqtt_overrides_it(tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text("node: n\nstate_dir: s\nmqtt: mqtt://broker\n")
    settings = from_args(parse(["--config", str(config), "--broker", "local:1999"]))
    assert settings.mqtt is None and settings.broker_port == 1999


def test_defaults_when_only_required_flags() -> None:
    settings = from_args(parse(["--node", "n", "--state-dir", "s"]))
    assert settings.mqtt is None and settings.broker_port == 1883
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 10550)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--state-dir", "s"], "node: required"),
        (["--node", "n"], "state_dir: required"),
        (["--node", "n", "--state-dir", "s", "--mqtt", "http://x"], "mqtt:"),
        (["--node", "n", "--state-dir", "s", "--mqtt", "mqtt://x:99999"], "invalid port"),
        (["--node", "n", "--state-dir", "s", "--broker", "remote"], "broker:"),
        (["--node", "n", "--state-dir", "s", "--broker", "local:0"], "not a TCP port"),
        (["--node", "n", "--state-dir", "s", "--http", "nocolon"], "http:"),
        (["--node", "n", "--state-dir", "s", "--token", "a.b.c.d"], "only with cloud"),
        (["--node", "n", "--state-dir", "s", "--labels", "novalue"], "k=v"),
        (["--node", "n", "--state-dir", "s", "--labels", "bad key=v"], "not a label name"),
        (["--node", "n", "--state-dir", "s", "--labels", "k=" + "v" * 64], "label value"),
        (["--node", "n", "--state-dir", "s", "--heartbeat", "0"], "heartbeat"),
        (["--node", "n", "--state-dir", "s", "--cloud", "wss://c:1", "--token", "x"], "token:"),
        (
            ["--node", "n", "--state-dir", "s", "--cloud", "wss://c:1", "--join", "http://c"],
            "join:",
        ),
    ],
)
def test_invalid_settings_when_given_name_the_setting(argv: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        from_args(parse(argv))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- a list", "must be a mapping"),
        ("node: n\ncolour: red", "unknown settings"),
        ("node: [unclosed", "config"),
    ],
)
def test_config_file_when_invalid_is_refused(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        from_args(parse(["--config", str(config), "--node", "n", "--state-dir", "s"]))


def test_cloud_when_given_defaults_certs_and_join_service_from_it() -> None:
    settings = from_args(parse(["--node", "n", "--state-dir", "s", "--cloud", "wss://cloud:10000"]))
    assert settings.cloud_certs == Path("s/certs")
    assert settings.join == "https://cloud:10002"


def test_labels_when_given_as_flag_or_mapping_are_kept() -> None:
    flags = from_args(parse(["--node", "n", "--state-dir", "s", "--labels", "a=1,example.com/b="]))
    assert flags.labels == {"a": "1", "example.com/b": ""}


@pytest.mark.parametrize(
    ("flags", "needs"),
    [
        ([], False),  # loopback: the default
        (["--http", "0.0.0.0:10550"], True),  # beyond loopback: a token unless told otherwise
        (["--http", "192.168.1.5:10550", "--http-auth", "none"], False),
        (["--http-auth", "token"], True),
    ],
)
def test_the_http_api_asks_a_token_beyond_loopback(flags: list[str], needs: bool) -> None:
    config = from_args(parse(["--node", "n", "--state-dir", "s", *flags]))
    assert config.http_needs_token is needs


def test_a_bad_cap_or_auth_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_optional_twins"):
        from_args(parse(["--node", "n", "--state-dir", "s", "--max-optional-twins", "5000"]))


def test_the_dmi_worker_is_off_unless_asked(tmp_path: Path) -> None:
    assert not from_args(parse(["--node", "n", "--state-dir", "s"])).dmi_worker
    assert from_args(parse(["--node", "n", "--state-dir", "s", "--dmi-worker"])).dmi_worker
    config = tmp_path / "edge.yaml"
    config.write_text("node: n\nstate_dir: s\ndmi_worker: true\n")
    assert from_args(parse(["--config", str(config)])).dmi_worker
