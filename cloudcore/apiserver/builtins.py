"""The built-in resource types: each with its schema (what Kubernetes refuses most visibly),
its columns, what a node identity may do with it and its hooks. Node access is Kubernetes' Node
authorizer and NodeRestriction admission as a table; a verb not listed is forbidden to nodes
(collection deletes, other nodes' objects, pod specs, Secrets no pod of theirs uses).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from cloudcore.apiserver import columns
from cloudcore.apiserver.auth import Rule
from cloudcore.apiserver.hooks import CrdHooks, NamespaceHooks, SecretHooks
from cloudcore.apiserver.resources import BUILTIN_SCALE, Column, ResourceType
from cloudcore.apiserver.selectors import BASE_FIELDS

Obj = dict[str, Any]
# objects bound to a node (spec.nodeName): read its own, list them filtered, report their status
_BOUND = {"get": Rule.BOUND, "list": Rule.FILTERED, "watch": Rule.FILTERED,
          "update:status": Rule.BOUND, "patch:status": Rule.BOUND}  # fmt: skip
# node access to the objects of the CRDs kedge knows, by storage key
CRD_NODE_ACCESS: dict[str, dict[str, Rule]] = {
    "devices.kubeedge.io/devices": _BOUND,
    "devices.kubeedge.io/devicemodels": {"get": Rule.ANY, "list": Rule.ANY, "watch": Rule.ANY},
}


RBAC = "rbac.authorization.k8s.io"


def _core(plural: str, kind: str, namespaced: bool = True, **more: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind.lower(), kind, namespaced, **more)


def _type(group: str, plural: str, kind: str, namespaced: bool, **more: Any) -> ResourceType:
    return ResourceType(group, "v1", plural, kind.lower(), kind, namespaced, **more)


def _col(name: str, path: str, kind: str = "string", priority: int = 0) -> Column:
    return Column(name, kind, path, priority=priority)


def _computed(name: str, compute: Callable[[Obj], Any], kind: str = "string") -> Column:
    return Column(name, kind, "", compute=compute)


def _loose(
    properties: dict[str, Any] | None = None, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """An object schema that checks the named fields and keeps every other one."""
    schema: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if properties:
        schema["properties"] = properties
    if required:
        schema["required"] = list(required)
    return schema


_STRING = {"type": "string"}
_STRINGS = {"type": "object", "additionalProperties": _STRING}
_CONTAINERS = {
    "type": "array",
    "minItems": 1,
    "items": _loose({"name": _STRING, "image": _STRING}, ("name", "image")),
}
_POD_SPEC = _loose({"containers": _CONTAINERS, "nodeName": _STRING}, ("containers",))
_COUNT = {"type": "integer", "minimum": 0}


def _workload(**defaults: Any) -> dict[str, Any]:
    """A workload's schema with Kubernetes' defaults for its spec (`kubectl rollout` reads them)."""
    more = {}
    for name, value in defaults.items():
        if isinstance(value, dict):  # a strategy: its type defaulted inside, the object too
            more[name] = {**_loose({"type": {**_STRING, "default": value["type"]}}), "default": {}}
        else:
            more[name] = {**_COUNT, "default": value}
    spec = _loose({"selector": _loose(), "template": _loose({"spec": _POD_SPEC}), **more},
                  ("selector", "template"))  # fmt: skip
    return _loose({"spec": spec}, ("spec",))


# what Kubernetes refuses most visibly for the built-in types; the rest of each type is kept as sent
BUILTIN_SCHEMAS: dict[str, dict[str, Any]] = {
    "Pod": _loose({"spec": _POD_SPEC}, ("spec",)),
    "Deployment": _workload(
        replicas=1,
        revisionHistoryLimit=10,
        progressDeadlineSeconds=600,
        strategy={"type": "RollingUpdate"},
    ),
    "ReplicaSet": _workload(replicas=1),
    "ControllerRevision": _loose({"revision": {"type": "integer"}}, ("revision",)),
    "DaemonSet": _workload(revisionHistoryLimit=10, updateStrategy={"type": "RollingUpdate"}),
    "ConfigMap": _loose({"data": _STRINGS, "binaryData": _STRINGS}),
    "Secret": _loose(
        {
            "data": {
                "type": "object",
                "additionalProperties": {"type": "string", "pattern": "^[A-Za-z0-9+/]*={0,2}$"},
            },
            "stringData": _STRINGS,
            "type": _STRING,
        }
    ),  # fmt: skip
    "Lease": _loose(
        {
            "spec": _loose(
                {
                    "holderIdentity": _STRING,
                    "leaseDurationSeconds": {"type": "integer"},
                    "renewTime": _STRING,
                }
            )
        }
    ),  # fmt: skip
    "Event": _loose({"involvedObject": _loose(), "reason": _STRING, "message": _STRING}),
}


_BUILTINS: tuple[ResourceType, ...] = (
    _core(
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        status=True,
        node_access={"get": Rule.ANY},
        hooks=NamespaceHooks(),
        fields=(*BASE_FIELDS, "status.phase"),
        columns=(_col("Status", ".status.phase"),),
    ),
    _core(
        "nodes",
        "Node",
        namespaced=False,
        short_names=("no",),
        status=True,
        node_access={
            "get": Rule.ANY,
            "list": Rule.ANY,
            "watch": Rule.ANY,
            "create": Rule.OWN_NAME,
            "update": Rule.OWN_NAME,
            "patch": Rule.OWN_NAME,
            "update:status": Rule.OWN_NAME,
            "patch:status": Rule.OWN_NAME,
            "delete": Rule.OWN_NAME,
        },  # fmt: skip
        fields=(*BASE_FIELDS, "spec.unschedulable"),
        columns=(
            _computed("Status", columns.node_status),
            _computed("Roles", columns.node_roles),
            _col("Version", ".status.nodeInfo.kubeletVersion"),
            _col("Internal-IP", ".status.addresses[0].address", priority=1),
        ),
    ),
    _core(
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        status=True,
        node_access=_BOUND | {"delete": Rule.BOUND},
        fields=(*BASE_FIELDS, "spec.nodeName", "status.phase", "spec.restartPolicy"),
        columns=(
            _computed("Ready", columns.pod_ready),
            _computed("Status", columns.pod_status),
            _computed("Restarts", columns.pod_restarts, "integer"),
            _col("IP", ".status.podIP", priority=1),
            _col("Node", ".spec.nodeName", priority=1),
        ),
    ),
    _core("configmaps", "ConfigMap", short_names=("cm",), node_access={"get": Rule.REFERENCED}),
    _core(
        "secrets",
        "Secret",
        fields=(*BASE_FIELDS, "type"),
        columns=(_col("Type", ".type"),),
        node_access={"get": Rule.REFERENCED},
        hooks=SecretHooks(),
    ),  # fmt: skip
    _core(
        "events",
        "Event",
        short_names=("ev",),
        fields=(
            *BASE_FIELDS,
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "source",
            "type",
        ),
        columns=(
            _col("Type", ".type"),
            _col("Reason", ".reason"),
            _col("Object", ".involvedObject.name"),
            _col("Message", ".message"),
        ),
        node_access={"create": Rule.ANY, "update": Rule.ANY, "patch": Rule.ANY},
    ),
    _core("serviceaccounts", "ServiceAccount", short_names=("sa",)),
    # stored for manifests written for real clusters (deploy/cloudcore): this server neither
    # routes Services nor enforces RBAC (its own authorization is admin and node identities)
    _core("services", "Service", short_names=("svc",), categories=("all",), status=True),
    *(
        _type(RBAC, plural, kind, namespaced)
        for plural, kind, namespaced in (
            ("clusterroles", "ClusterRole", False),
            ("clusterrolebindings", "ClusterRoleBinding", False),
            ("roles", "Role", True),
            ("rolebindings", "RoleBinding", True),
        )
    ),  # fmt: skip
    _type(
        "apps",
        "deployments",
        "Deployment",
        True,
        short_names=("deploy",),
        categories=("all",),
        status=True,
        scale=BUILTIN_SCALE,
        columns=(
            _computed("Ready", columns.deployment_ready),
            _col("Up-to-date", ".status.updatedReplicas", "integer"),
            _col("Available", ".status.availableReplicas", "integer"),
        ),
    ),
    _type(
        "apps",
        "replicasets",
        "ReplicaSet",
        True,
        short_names=("rs",),
        categories=("all",),
        status=True,
        scale=BUILTIN_SCALE,
        columns=(
            _col("Desired", ".spec.replicas", "integer"),
            _col("Current", ".status.replicas", "integer"),
            _col("Ready", ".status.readyReplicas", "integer"),
        ),
    ),
    _type(
        "apps",
        "controllerrevisions",
        "ControllerRevision",
        True,
        columns=(
            _col("Controller", ".metadata.ownerReferences[0].name"),
            _col("Revision", ".revision", "integer"),
        ),
    ),
    _type(
        "apps",
        "daemonsets",
        "DaemonSet",
        True,
        short_names=("ds",),
        categories=("all",),
        status=True,
        columns=(
            _col("Desired", ".status.desiredNumberScheduled", "integer"),
            _col("Ready", ".status.numberReady", "integer"),
        ),
    ),
    _type(
        "coordination.k8s.io",
        "leases",
        "Lease",
        True,
        node_access=dict.fromkeys(("get", "create", "update", "patch", "delete"), Rule.OWN_LEASE),
    ),  # fmt: skip
    _type(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        status=True,
        hooks=CrdHooks(),
    ),
)


BUILTINS: tuple[ResourceType, ...] = tuple(
    dataclasses.replace(kind, schema=BUILTIN_SCHEMAS.get(kind.kind)) for kind in _BUILTINS
)
