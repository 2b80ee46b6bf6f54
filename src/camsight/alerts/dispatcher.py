"""Moving outbox rows to their sinks: one pass (:meth:`Dispatcher.deliver_due`) or a service (:meth:`run`).

Each sink is worked by its own thread, so a sink that is down (and waits
out its timeouts) never delays the others; within a sink, messages go out
one at a time, oldest first, and a failure stops that sink until its retry
is due. A row is marked delivered only after the receiver accepted it, so
a process killed mid-delivery sends that row again next time: delivery is
at least once, and receivers drop duplicates by ``uid`` + ``kind``.

A service next to the camera workers::

    stop = threading.Event()
    with Dispatcher(store, config.alerts) as dispatcher:
        threading.Thread(target=dispatcher.run, args=(stop,), daemon=True).start()
        ...  # events code: enqueue(session, config.alerts, payload); then dispatcher.wake()
        stop.set()

Several dispatchers (the service and ``camsight alerts deliver``) may work
the same store: a claimed row is leased, so they take turns per sink.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from camsight.alerts.links import EventLinks
from camsight.alerts.outbox import (
    FAILED,
    MQTT_SINK,
    DeliveryError,
    OutboxMessage,
    claim_next,
    mark_delivered,
    next_due_at,
    schedule_retry,
)
from camsight.config import AlertsConfig, CameraConfig
from camsight.store.db import Store
from camsight.store.models import Camera, EventRow, utcnow

log = logging.getLogger(__name__)

#: Shortest sleep of a service loop, so a head that is due "now" is not polled in a busy loop.
MIN_WAIT_S = 0.05
#: A sink failing for this long is worth a warning (shorter outages are logged at info).
WARN_AFTER_S = 60.0
#: Longest pause between a service's attempts to (re)connect an idle sink.
MAX_REOPEN_S = 60.0


class Sink(Protocol):
    """What the dispatcher needs of a sink (:class:`~camsight.alerts.webhook.WebhookSink`, MqttSink)."""

    name: str
    kind: str
    #: How long a claimed row stays reserved for this sink's attempt.
    lease_s: float

    def open(self) -> None:
        """Connect ahead of the first delivery where that means something; raise DeliveryError."""

    def deliver(self, message: OutboxMessage) -> None:
        """Return once the receiver accepted ``message``; raise DeliveryError otherwise."""

    def close(self) -> None:
        """Release connections."""


@dataclass
class SinkReport:
    """One sink's share of a pass."""

    sink: str
    delivered: int = 0
    #: Failed attempts that were scheduled for a retry.
    retried: int = 0
    #: Rows that reached ``max_attempts`` and were marked failed.
    gave_up: int = 0
    last_error: str | None = None
    #: Another pass (or process) held the sink, or the database was busy.
    skipped: bool = False


@dataclass
class DeliveryReport:
    """What one :meth:`Dispatcher.deliver_due` pass did."""

    sinks: dict[str, SinkReport] = field(default_factory=dict)
    #: The pass stopped at its deadline with work possibly left.
    deadline_reached: bool = False

    @property
    def delivered(self) -> int:
        return sum(r.delivered for r in self.sinks.values())

    @property
    def retried(self) -> int:
        return sum(r.retried for r in self.sinks.values())

    @property
    def gave_up(self) -> int:
        return sum(r.gave_up for r in self.sinks.values())

    @property
    def errors(self) -> dict[str, str]:
        """Sink name -> the last error it met in this pass."""
        return {name: r.last_error for name, r in self.sinks.items() if r.last_error}


def open_events(store: Store, cameras: Mapping[str, CameraConfig] | None = None) -> list[dict[str, str]]:
    """The events open in ``store`` now, as ``{"camera", "type", "severity", "rule"}``.

    With ``cameras`` (the config), events of rules configured with
    ``notify: false`` are left out: their changes never reach a sink.
    """
    with store.session() as session:
        rows = session.execute(
            select(Camera.name, EventRow.type, EventRow.severity, EventRow.rule)
            .join(Camera, Camera.id == EventRow.camera_id)
            .where(EventRow.state == "open")
            .distinct()
        ).all()
    quiet = {
        (name, rule.display_name())
        for name, camera in (cameras or {}).items()
        for rule in camera.rules
        if not rule.notify
    }
    return [
        {"camera": camera, "type": type_, "severity": severity, "rule": rule}
        for camera, type_, severity, rule in rows
        if (camera, rule) not in quiet
    ]


def build_sinks(
    alerts: AlertsConfig,
    *,
    mqtt_availability: bool = True,
    mqtt_client_id: str | None = None,
    cameras: Mapping[str, CameraConfig] | None = None,
    store: Store | None = None,
) -> dict[str, Sink]:
    """One sink object per configured sink; secrets are resolved now (ConfigError if one is missing).

    ``cameras`` and ``store`` let the MQTT service announce every configured
    rule's sensor and reconcile retained states with the open events; ``store``
    also gives the notifiers the event snapshots to attach.
    """
    from camsight.alerts.mqtt import MqttSink, configured_sensors
    from camsight.alerts.notify import NotifySink
    from camsight.alerts.webhook import WebhookSink

    sinks: dict[str, Sink] = {}
    try:
        for hook in alerts.webhooks:
            sinks[hook.name] = WebhookSink(hook)
        if alerts.mqtt is not None:
            sinks[MQTT_SINK] = MqttSink(
                alerts.mqtt,
                availability=mqtt_availability,
                client_id=mqtt_client_id,
                sensors=configured_sensors(cameras or {}, alerts.mqtt),
                open_events=None if store is None else (lambda: open_events(store, cameras)),
            )
        for notifier in alerts.notify:
            sinks[notifier.name] = NotifySink(notifier, media=store.media if store is not None else None)
    except Exception:
        for sink in sinks.values():
            sink.close()
        raise
    return sinks


def check_sinks(alerts: AlertsConfig) -> None:
    """Raise ConfigError now for a sink that could not deliver (a secret not set, an unusable URL).

    Builds every sink and closes it at once: nothing connects.
    """
    for sink in build_sinks(alerts).values():
        sink.close()


class Dispatcher:
    """Delivers the outbox of ``store`` to the sinks configured in ``alerts``.

    Construction checks the sinks' secrets (a missing ``secret_env`` or
    ``password_env`` variable raises ConfigError); connections open at the
    first delivery. ``sinks`` replaces the configured sink objects (tests,
    other transports). ``mqtt_availability=False`` keeps a one-off run from
    touching ``<prefix>/available``, which the long-running service owns.
    ``cameras`` (the config's) makes the MQTT service announce a Home
    Assistant sensor for every configured rule, fired or not, when it
    connects. ``links`` adds the signed links to the event's snapshot and
    clip to every payload as it is sent (see :mod:`camsight.alerts.links`).
    Close it (or use it as a context manager) to disconnect.
    """

    def __init__(
        self,
        store: Store,
        alerts: AlertsConfig,
        *,
        sinks: Mapping[str, Sink] | None = None,
        mqtt_availability: bool = True,
        mqtt_client_id: str | None = None,
        cameras: Mapping[str, CameraConfig] | None = None,
        links: EventLinks | None = None,
    ) -> None:
        self.store = store
        self.alerts = alerts
        self.links = links
        self.sinks: dict[str, Sink] = (
            dict(sinks)
            if sinks is not None
            else build_sinks(
                alerts,
                mqtt_availability=mqtt_availability,
                mqtt_client_id=mqtt_client_id,
                cameras=cameras,
                store=store,
            )
        )
        # One holder per sink at a time: sink objects (an MQTT connection)
        # are not shared between threads, and order needs one sender.
        self._locks = {name: threading.Lock() for name in self.sinks}
        self._wakes = {name: threading.Event() for name in self.sinks}
        #: Per sink: when its current run of failures began (monotonic), and whether that was warned of.
        self._failing_since: dict[str, float | None] = dict.fromkeys(self.sinks)
        self._warned: dict[str, bool] = dict.fromkeys(self.sinks, False)

    @property
    def sink_names(self) -> list[str]:
        return list(self.sinks)

    # ----------------------------------------------------------------- one pass

    def deliver_due(self, deadline_s: float | None = None) -> DeliveryReport:
        """Deliver every due row, all sinks side by side; return what happened.

        A sink stops at its first failure (its later rows wait behind it) or
        when nothing of it is due. With ``deadline_s`` no delivery starts
        after that many seconds; one in flight then finishes (at most its
        sink's timeout later).
        """
        deadline = time.monotonic() + deadline_s if deadline_s is not None else None
        report = DeliveryReport()
        results: dict[str, SinkReport] = {}
        reached: list[bool] = []

        def work(name: str) -> None:
            results[name], hit = self._deliver_sink(name, deadline, None)
            if hit:
                reached.append(True)

        threads = [
            threading.Thread(target=work, args=(name,), name=f"camsight-alerts-{name}", daemon=True)
            for name in self.sinks
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report.sinks = {name: results.get(name, SinkReport(name, skipped=True)) for name in self.sinks}
        report.deadline_reached = bool(reached)
        return report

    def _deliver_sink(
        self, name: str, deadline: float | None, stop: threading.Event | None
    ) -> tuple[SinkReport, bool]:
        report = SinkReport(name)
        lock = self._locks[name]
        if not lock.acquire(blocking=False):
            report.skipped = True
            return report, False
        try:
            while True:
                if stop is not None and stop.is_set():
                    return report, False
                if deadline is not None and time.monotonic() >= deadline:
                    return report, True
                if not self._deliver_one(name, report):
                    return report, False
        finally:
            lock.release()

    def _deliver_one(self, name: str, report: SinkReport) -> bool:
        """Claim and send ``name``'s head; True when the sink may go on (delivered, or given up on)."""
        sink = self.sinks[name]
        try:
            with self.store.session() as session:
                message = claim_next(session, name, lease_s=sink.lease_s)
        except SQLAlchemyError as exc:
            # Busy or unwritable database: leave the sink for the next pass.
            log.warning("outbox unavailable", extra={"sink": name, "error": str(exc).splitlines()[0]})
            report.skipped = True
            return False
        if message is None:
            return False
        retry_after = 0.0
        try:
            if self.links is not None:
                # Signed now, not at enqueue: a link is valid for its whole expiry after it went out.
                message = dataclasses.replace(message, payload=self.links.add_to(message.payload, name))
            sink.deliver(message)
        except DeliveryError as exc:
            error, retry_after = str(exc), exc.retry_after_s
        except Exception as exc:
            # A bug in one sink must not stop the others, nor lose the row.
            log.exception("alert sink crashed", extra={"sink": name, "outbox_id": message.id})
            error = f"internal error in the {sink.kind} sink ({type(exc).__name__}); see the log"
        else:
            try:
                with self.store.session() as session:
                    mark_delivered(session, message.id)
            except SQLAlchemyError as exc:
                # Sent but not recorded: the lease runs out and it is sent again (at least once).
                log.warning(
                    "delivered but not recorded",
                    extra={"sink": name, "outbox_id": message.id, "error": str(exc).splitlines()[0]},
                )
                return False
            report.delivered += 1
            self._recovered(name)
            log.debug(
                "alert delivered",
                extra={"sink": name, "outbox_id": message.id, "event_uid": message.event_uid},
            )
            return True
        report.last_error = error
        try:
            with self.store.session() as session:
                outcome = schedule_retry(
                    session, message.id, error, self.alerts.retry, min_delay_s=retry_after
                )
        except SQLAlchemyError as exc:
            log.warning("attempt not recorded", extra={"sink": name, "error": str(exc).splitlines()[0]})
            return False
        fields = {"sink": name, "outbox_id": message.id, "attempts": outcome.attempts, "error": error}
        if outcome.status == FAILED:
            report.gave_up += 1
            log.error("alert given up (camsight alerts retry re-queues it)", extra=fields)
            self._failed(name, fields)
            return True  # it no longer holds the queue: the next row gets its turn
        report.retried += 1
        fields["retry_in_s"] = round(outcome.delay_s, 2)
        log.info("alert delivery failed, will retry", extra=fields)
        self._failed(name, fields)
        return False

    def _failed(self, name: str, fields: dict[str, object]) -> None:
        # A blip is normal (receivers restart); warn once per outage that lasts.
        now = time.monotonic()
        since = self._failing_since.get(name)
        if since is None:
            self._failing_since[name] = since = now
        if not self._warned.get(name) and now - since >= WARN_AFTER_S:
            self._warned[name] = True
            log.warning("alert sink failing", extra=fields | {"failing_for_s": round(now - since)})

    def _recovered(self, name: str) -> None:
        if self._warned.get(name):
            since = self._failing_since.get(name) or time.monotonic()
            log.warning(
                "alert sink recovered", extra={"sink": name, "failed_for_s": round(time.monotonic() - since)}
            )
        self._failing_since[name], self._warned[name] = None, False

    # ----------------------------------------------------------------- service

    def wake(self) -> None:
        """Make :meth:`run` look at the outbox now (e.g. right after an event was enqueued)."""
        for event in self._wakes.values():
            event.set()

    def run(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Deliver continuously until ``stop`` is set, then close the sinks.

        Each sink has its own thread: it delivers what is due, then sleeps
        until its head is due, :meth:`wake` is called, or ``poll_s`` passed
        (rows enqueued by other processes are seen within ``poll_s``).
        Returns once in-flight deliveries finished.
        """
        stopping = threading.Event()
        threads = [
            threading.Thread(
                target=self._sink_loop,
                args=(name, stopping, poll_s),
                name=f"camsight-alerts-{name}",
                daemon=True,
            )
            for name in self.sinks
        ]
        log.info("alert dispatcher started", extra={"sinks": self.sink_names})
        for thread in threads:
            thread.start()
        try:
            stop.wait()
        finally:
            stopping.set()
            self.wake()
            for thread in threads:
                thread.join()
            self.close()
            log.info("alert dispatcher stopped")

    def _keep_open(self, name: str, reopen: list[float]) -> None:
        """Connect an idle sink (the MQTT ``online`` state), retrying with a doubling pause."""
        now = time.monotonic()
        if now < reopen[0] or not self._locks[name].acquire(blocking=False):
            return
        try:
            self.sinks[name].open()
            reopen[1] = 1.0
        except DeliveryError as exc:
            reopen[0], reopen[1] = now + reopen[1], min(reopen[1] * 2, MAX_REOPEN_S)
            log.info("alert sink not reachable", extra={"sink": name, "error": str(exc)})
        finally:
            self._locks[name].release()

    def _sink_loop(self, name: str, stopping: threading.Event, poll_s: float) -> None:
        wake = self._wakes[name]
        reopen = [0.0, 1.0]  # next time to try, pause after a failure
        while not stopping.is_set():
            wake.clear()
            wait = poll_s
            try:
                self._keep_open(name, reopen)
                report, _ = self._deliver_sink(name, None, stopping)
                with self.store.session() as session:
                    due = next_due_at(session, name)
                # Sleep until the head is due (it may be already: it became due
                # during the pass); a busy database gets the full poll interval.
                if due is not None and not report.skipped:
                    wait = min(poll_s, (due - utcnow()).total_seconds())
            except Exception:
                log.exception("alert dispatcher error", extra={"sink": name})
            wake.wait(max(wait, MIN_WAIT_S))

    # ----------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close every sink's connection (an MQTT service says ``offline`` first)."""
        for name, sink in self.sinks.items():
            with self._locks[name]:
                try:
                    sink.close()
                except Exception:
                    log.exception("closing alert sink failed", extra={"sink": name})

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
