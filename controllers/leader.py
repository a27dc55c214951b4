"""Leader election over a `coordination.k8s.io` Lease, as client-go's leaderelection.

Every cloudcore replica serves the nodes connected to it, but the singletons (node monitor,
device conditions, the standalone scheduler and workload controllers) must run once. The
replica whose identity the Lease holds runs them; it renews every `retry` seconds; a holder
whose renewals the others have not seen change for the Lease's duration is replaced (observed
time, so clocks need not agree); updates carry the resourceVersion they read, so two replicas
can never both win. A replica that stops releases the Lease, so a successor takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from kubernetes.client.exceptions import ApiException

from controllers.leanapi import LeanApi, path_of
from kedge import clock

log = logging.getLogger("kedge.controllers")
DURATION = 15.0  # client-go's defaults: lease duration, renew deadline, retry period
DEADLINE = 10.0
RETRY = 2.0


class LeaderElection:
    def __init__(self, lean: LeanApi, namespace: str, name: str, identity: str,
                 duration: float = DURATION, retry: float = RETRY) -> None:  # fmt: skip
        self.lean, self.identity, self.duration, self.retry = lean, identity, duration, retry
        self.path = path_of("apis", "coordination.k8s.io", "v1", "namespaces", namespace,
                            "leases", name)  # fmt: skip
        self.namespace, self.name = namespace, name
        self._leading = False
        self.on_change: list[Callable[[bool], None]] = []  # told when leadership is won or lost
        self.attempts = 0  # acquisitions and renewals tried, for tests
        self._observed: tuple[Any, float] = (None, 0.0)  # (the record seen, when it changed)

    @property
    def leading(self) -> bool:
        return self._leading

    @leading.setter
    def leading(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            for listener in self.on_change:
                listener(leading)

    def _spec(self, transitions: int, acquired: str) -> dict[str, Any]:
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.duration),
                "acquireTime": acquired, "renewTime": clock.micro_now(),
                "leaseTransitions": transitions}  # fmt: skip

    async def _try(self) -> bool:
        """One attempt to acquire or renew; True while this replica holds the Lease."""
        try:
            lease = await self.lean.get(self.path)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(0, clock.micro_now())}  # fmt: skip
            await self.lean.create(self.path.rsplit("/", 1)[0], body)
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"))
        now = time.monotonic()
        if record != self._observed[0]:
            self._observed = (record, now)
        expired = now - self._observed[1] > float(spec.get("leaseDurationSeconds") or 0)
        if holder and holder != self.identity and not expired:
            return False
        mine = holder == self.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        acquired = spec.get("acquireTime") if mine else clock.micro_now()
        lease["spec"] = self._spec(transitions, str(acquired))
        await self.lean.replace(self.path, lease)  # a 409 when another replica got there first
        return True

    async def _attempt(self) -> bool:
        self.attempts += 1
        try:
            return await self._try()
        except ApiException as exc:
            log.info("leader election: %s", exc.reason, extra={"lease": self.name})
            return False

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]], elect: bool = True
                  ) -> None:  # fmt: skip
        """Until cancelled: whenever this replica holds the Lease, `lead()` runs; it is
        cancelled when a renewal has not succeeded for DEADLINE seconds. Without `elect` (the
        only replica) it just runs."""
        if not elect:
            self.leading = True
            await lead()
            return
        while True:
            await self._acquire()
            self.leading = True
            log.info("leading", extra={"lease": self.name, "identity": self.identity})
            work = asyncio.create_task(lead(), name=f"leader {self.name}")
            try:
                await self._hold(work)
            finally:
                self.leading = False
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
            log.warning("leadership lost", extra={"lease": self.name, "identity": self.identity})

    async def _acquire(self) -> None:
        while True:
            if await self._attempt():
                return
            await asyncio.sleep(self.retry)  # noqa: ASYNC110 - the retry period, not a wait

    async def _hold(self, work: asyncio.Task[None]) -> None:
        """Renew until a renewal fails for DEADLINE seconds (or `work` ends: an error)."""
        renewed = time.monotonic()
        while time.monotonic() - renewed < DEADLINE:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(work), self.retry)  # the renew period
            if work.done():
                work.result()  # raises what the singletons failed with: supervised restart
                return
            if await self._attempt():
                renewed = time.monotonic()

    async def release(self) -> None:
        """Give the Lease up (when stopping): the next replica need not wait it out."""
        if self.attempts == 0:
            return  # never took part
        with contextlib.suppress(ApiException):
            lease = await self.lean.get(self.path)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"] = {**lease["spec"], "holderIdentity": "",
                                 "leaseDurationSeconds": 1}  # fmt: skip
                await self.lean.replace(self.path, lease)
