"""Topic parsing: the v1.17+ layout parses; everything else gets a reply topic and a reason."""

from __future__ import annotations

import pytest

from devicetwin.topics import Action, TopicError, membership_get_topic, parse_device_topic


@pytest.mark.parametrize(
    ("topic", "device", "action"),
    [
        ("$hw/events/device/default/t1/twin/update", "default/t1", Action.TWIN_UPDATE),
        ("$hw/events/device/prod/pump-3/twin/get", "prod/pump-3", Action.TWIN_GET),
        ("$hw/events/device/a/b.c/state/update", "a/b.c", Action.STATE_UPDATE),
    ],
)
def test_parse_device_topic_when_valid(topic: str, device: str, action: Action) -> None:
    parsed = parse_device_topic(topic)
    assert parsed is not None and (parsed.device, parsed.action) == (device, action)


@pytest.mark.parametrize(
    "topic",
    [
        "$hw/events/device/default/t1/twin/update/result",
        "$hw/events/device/default/t1/twin/update/delta",
        "$hw/events/device/default/t1/twin/update/document",
        "$hw/events/device/default/t1/state/update/result",
        "$hw/events/node/n1/membership/get",
    ],
)
def test_parse_device_topic_when_edge_published_is_ignored(topic: str) -> None:
    assert parse_device_topic(topic) is None


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("$hw/events/device/t1/twin/update", "names no namespace"),
        ("$hw/events/device/default/t1/twin/frobnicate", "unknown action"),
        ("$hw/events/device/default/t1", "does not parse"),
        ("$hw/events/device/Default/t1/twin/update", "invalid namespace"),
        ("$hw/events/device/default/T_1/twin/update", "invalid name"),
    ],
)
def test_parse_device_topic_when_malformed_names_reply_topic(topic: str, fragment: str) -> None:
    with pytest.raises(TopicError) as err:
        parse_device_topic(topic)
    assert fragment in err.value.reason
    assert err.value.reply_topic == topic + "/result"


def test_membership_topic_when_built() -> None:
    assert membership_get_topic("edge-1") == "$hw/events/node/edge-1/membership/get"
