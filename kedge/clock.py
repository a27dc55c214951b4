"""Kubernetes' two timestamp forms (metav1.Time, metav1.MicroTime), for now, in UTC."""

from __future__ import annotations

import datetime


def now() -> str:
    """metav1.Time: seconds (conditions, taints, events)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    """metav1.MicroTime: microseconds (Lease renewTime and acquireTime)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
