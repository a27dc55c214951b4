"""Topic parsing: the v1.17+ layout parses; everything else gets a reply topic and a reason."""

from __future__ import annotations

import pytest

from devicetwin.model import DeviceId
from devicetwin.topics import (
    ANY_DEVICE,
    Action,
    TopicError,
    delta_topic,
    device_subtree,
    mapper_presence_subscription,
    mapper_presence_topic,
    membership_get_topic,
    parse_delta_topic,
    parse_device_topic,
    parse_presence_topic,
    state_update_topic,
    twin_get_topic,
    twin_update_topic,
)


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


def test_delta_topics_parse_back_to_their_device_and_nothing_else_does() -> None:
    device = DeviceId("ns1/pump-2")
    assert parse_delta_topic(delta_topic(device)) == device
    for other in (twin_update_topic(device), state_update_topic(device),
                  f"{delta_topic(device)}/x", "$hw/events/device/pump/twin/update/delta",
                  membership_get_topic("n1")):  # fmt: skip
        assert parse_delta_topic(other) is None


def test_presence_topics_name_protocol_and_instance_of_their_node_only() -> None:
    topic = mapper_presence_topic("n1", "modbus", "a1")
    assert parse_presence_topic("n1", topic) == ("modbus", "a1")
    assert parse_presence_topic("n2", topic) is None
    assert parse_presence_topic("n1", membership_get_topic("n1")) is None
    assert mapper_presence_subscription("n1") == mapper_presence_topic("n1", "+", "+")


def test_patterns_for_subscriptions_and_acls() -> None:
    assert delta_topic(ANY_DEVICE) == "$hw/events/device/+/+/twin/update/delta"
    assert twin_get_topic(ANY_DEVICE) == "$hw/events/device/+/+/twin/get"
    assert device_subtree() == "$hw/events/device/#"
    assert device_subtree(DeviceId("ns/d")) == "$hw/events/device/ns/d/#"
