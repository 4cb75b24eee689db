"""The sync thread: keeps the buffer filled, the outbox drained and the leases renewed."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from station import __version__, policy
from station.boot import boot_id
from station.config import CentralConfig, buffer_target
from station.crypto import DataKey
from station.disk import DiskGuard
from station.fleet_beat import fleet_fields, heartbeat_state
from station.i18n import Msg, stored
from station.link.client import CentralRefused, LinkDown, QueueClient, RefusedLease
from station.link.protocol import (
    MAX_BATCH,
    MAX_LEASE_TTL_S,
    CardResult,
    Heartbeat,
    LeasedRecord,
)
from station.metrics import SYNC_ROUNDS
from station.quiet import QuietWindow
from station.status import StatusBoard
from station.store import buffer, figures, leases, outbox
from station.store.db import Database
from station.store.ingest import Checked, buffer_checked, check, granted, refuse

log = structlog.get_logger("station.sync")

T = TypeVar("T")

#: Lease ids one renew or release request may carry (station/link/protocol.py).
LEASE_IDS_PER_REQUEST = 10 * MAX_BATCH
#: Leases renewed in one request (each takes a few milliseconds of the printer's time).
RENEW_CHUNK = 100


def _nothing() -> None:
    """No-op default of :attr:`SyncDeps.on_records`."""


def _no_problem() -> str | None:
    """Default of :attr:`SyncDeps.worker_problem`: nothing wrong."""
    return None


@dataclass
class SyncDeps:
    """What the sync thread works with, from the daemon (station/daemon.py)."""

    db: Database
    client: QueueClient
    cfg: CentralConfig
    keys: dict[str, Ed25519PublicKey]
    data_key: DataKey
    board: StatusBoard
    #: Rounds start while the printer is away from its durable points.
    quiet: QuietWindow = field(default_factory=QuietWindow)
    #: The office's rules; replaced as a whole on reload (SIGHUP).
    rationing: policy.RationingConfig = field(default_factory=policy.RationingConfig)
    #: Called when new records were buffered (wakes the printer worker).
    on_records: Callable[[], None] = _nothing
    #: What is wrong with the printer worker now, for heartbeats.
    worker_problem: Callable[[], str | None] = _no_problem
    #: The state volume (station/disk.py): nothing more is leased on a nearly full disk,
    #: its free MB go into heartbeats. None: not watched.
    disk: DiskGuard | None = None


class SyncLoop:
    def __init__(self, deps: SyncDeps) -> None:
        self.deps = deps
        self.db = deps.db
        self.client = deps.client
        self.cfg = deps.cfg
        self.keys = deps.keys
        self.data_key = deps.data_key
        self.board = deps.board
        self.quiet = deps.quiet
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self._boot = boot_id()
        self._next_renew = 0.0
        self._next_beat = 0.0
        self._next_vacuum = time.monotonic() + self.cfg.vacuum_every_h * 3600
        self._backoff = 0.0
        self._link_up: bool | None = None
        #: This round has waited out the quiet window's ``max_wait_s`` once already.
        self._overdue = False
        self._thread = threading.Thread(target=self._run, name="sync", daemon=True)

    @property
    def rationing(self) -> policy.RationingConfig:
        """The office's rules in force (replaced as a whole on reload)."""
        return self.deps.rationing

    @rationing.setter
    def rationing(self, rules: policy.RationingConfig) -> None:
        self.deps.rationing = rules

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            self._overdue = False
            self._quiet()
            if self.stop_event.is_set():
                break
            started, outcome = time.monotonic(), "ok"
            try:
                busy = self.round()
                self._set_link(True)
                self._backoff = 0.0
                delay = 0.0 if busy else self.cfg.sync_interval_s
            except LinkDown as exc:
                outcome = "link_down"
                self._set_link(False, exc.args[0] if exc.args else str(exc))
                self._backoff = min(max(self._backoff * 2, 0.5), self.cfg.retry_max_s)
                delay = self._backoff * random.uniform(0.5, 1.0)
            except CentralRefused as exc:
                outcome = "refused"
                log.error("central_refused", detail=str(exc))
                self.board.error("central", str(exc), Msg("tell the central system's operators"))
                delay = self.cfg.retry_max_s
            except sqlite3.OperationalError as exc:  # a full disk: the round is tried again
                outcome = "db_error"
                log.error("sync_round_failed", error=str(exc))
                delay = self.cfg.sync_interval_s
            SYNC_ROUNDS.labels(outcome).observe(time.monotonic() - started)
            self.wake.wait(delay)
            self.wake.clear()

    def _quiet(self) -> None:
        """Wait for the printer's quiet window before each step of a round (a request, a
        transaction, a record's checks), not only before the round: a round outlasts the
        print it started in, and its steps would land on the next card's durable points.
        Once a round has waited ``max_wait_s`` out, its other steps go on at once."""
        if not self._overdue:
            self._overdue = not self.quiet.wait()

    def _db(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """One transaction through the database owner, in the quiet window."""
        self._quiet()
        return self.db.run(fn, durable=durable)

    def _set_link(self, up: bool, detail: str = "") -> None:
        if up != self._link_up:
            self._link_up = up
            self._quiet()  # a status write is a transaction too
            self.board.set(
                link={
                    "up": up,
                    "since": time.time(),
                    "detail": str(detail),
                    "detail_msg": stored(detail) if isinstance(detail, Msg) else None,
                }
            )
            log.info("link_up" if up else "link_down", detail=detail)

    def round(self) -> bool:
        """One pass; True when there is more to do right away."""
        busy = self.drain_outbox()
        now = time.monotonic()
        if now >= self._next_renew:
            self.renew()
            self._next_renew = now + self.cfg.renew_every_s
        self.release_excess()
        busy = self.fill_buffer() or busy
        if now >= self._next_beat:
            self.heartbeat()
            self._next_beat = now + self.cfg.heartbeat_every_s
        if now >= self._next_vacuum:
            # Give back the pages purged payloads occupied (secure_delete zeroed them).
            self._db(lambda c: c.execute("PRAGMA incremental_vacuum"), durable=False)
            self._next_vacuum = now + self.cfg.vacuum_every_h * 3600
        return busy

    def drain_outbox(self) -> bool:
        pending = self._db(
            lambda c: outbox.pending_results(c, self.cfg.outbox_batch), durable=False
        )
        if not pending:
            return False
        results = [CardResult.model_validate_json(body) for _, body in pending]
        self._quiet()
        answer = self.client.results(results)
        acked = answer.acked
        # Not fsync'd: an ack a power cut loses only sends the result again, and the
        # centre acknowledges a duplicate result_id without counting it twice.
        self._db(lambda c: outbox.ack_results(c, acked), durable=False)
        if answer.refused:
            log.warning("results_refused", count=len(answer.refused))
            self._db(lambda c: outbox.settle_refused(c, answer.refused))
        return len(pending) == self.cfg.outbox_batch

    def renew(self) -> None:
        """Renew every active lease, :data:`RENEW_CHUNK` a request: one request for 10,000
        leases held the interpreter and the database for ~2 s, and the printer with them
        (bench/endurance.py)."""
        active = self._db(leases.active_leases, durable=False)
        for at in range(0, len(active), RENEW_CHUNK):
            self._quiet()  # a long renewal is spread over the printer's quiet windows
            self._renew(active[at : at + RENEW_CHUNK])

    def _renew(self, lease_ids: list[str]) -> None:
        sent_at = (time.time(), time.monotonic())
        answer = self.client.renew(lease_ids)
        renewed = {lid: (sent_at[0] + ttl, sent_at[1] + ttl) for lid, ttl in answer.renewed.items()}
        self._db(lambda c: leases.renew_leases(c, renewed, answer.lost))
        if answer.lost:
            log.warning("leases_lost", count=len(answer.lost))

    def _allowance(self, conn: sqlite3.Connection) -> policy.Allowance:
        return policy.allowance(conn, self.rationing, figures.ledger_totals(conn)["in_stock"])

    def paused_too_long(self) -> bool:
        """The printer has stood still (jam, cover, ribbon, inspection…) past the limit."""
        state = self.board.get("state") or {}
        return (
            state.get("category") in ("paused", "error")
            and time.time() - state.get("since", time.time()) > self.cfg.release_paused_after_s
        )

    def release_excess(self) -> None:
        """Hand back leases the station cannot print soon (no blanks, quota, a printer
        stopped too long), with the reason, so the centre can route them elsewhere or
        issue a Suket."""

        def excess(conn: sqlite3.Connection) -> tuple[list[tuple[str, str]], str] | None:
            allow = self._allowance(conn)
            paused = not allow.stop and self.paused_too_long()
            capacity = 0 if allow.stop or paused else allow.capacity
            if capacity is None:
                return None
            found = leases.excess_leases(conn, capacity, allow.urgent_only)
            if not found:
                return None
            reason = allow.stop or (
                "paused"
                if paused
                else "no_blanks"
                if capacity >= figures.ledger_totals(conn)["in_stock"]
                else "quota"
            )
            return found, reason

        def probe(conn: sqlite3.Connection) -> tuple[bool, dict[str, list[str]]]:
            return excess(conn) is not None, leases.unsent_releases(conn)

        def decide(conn: sqlite3.Connection) -> dict[str, list[str]]:
            found = excess(conn)
            if found is not None:
                leases.release_records(conn, *found)
                log.info("leases_released", count=len(found[0]), reason=found[1])
            return leases.unsent_releases(conn)

        # Most rounds release nothing: a read first, the durable write only when needed
        # (decided again inside it, as the printer may have started a record meanwhile).
        more, unsent_by_reason = self._db(probe, durable=False)
        if more:
            unsent_by_reason = self._db(decide)
        for reason, unsent in unsent_by_reason.items():
            for at in range(0, len(unsent), LEASE_IDS_PER_REQUEST):
                lease_ids = unsent[at : at + LEASE_IDS_PER_REQUEST]
                self._quiet()
                self.client.release(lease_ids, reason)  # type: ignore[arg-type]
                self._mark_sent(lease_ids)

    def _mark_sent(self, lease_ids: list[str]) -> None:
        self._db(lambda c: leases.releases_sent(c, lease_ids), durable=False)

    def fill_buffer(self) -> bool:
        def room(conn: sqlite3.Connection) -> int:
            allow = self._allowance(conn)
            capacity = 0 if allow.stop or self.paused_too_long() else allow.capacity
            target = buffer_target(self.cfg, figures.print_rate_per_hour(conn))
            if capacity is not None:
                target = min(target, capacity)
            return max(0, target - figures.counts(conn)["buffered"])

        want = min(self._db(room, durable=False), self.cfg.lease_batch)
        if want <= 0 or (self.deps.disk is not None and self.deps.disk.low()):
            return False
        self._quiet()
        sent_at = (time.time(), time.monotonic())
        answer = self.client.lease(want)
        # Signatures, fields, images and layout are checked here, not in the database
        # thread (~1-2 ms a record); the transaction only stores the outcome. Each
        # record's checks wait for the quiet window, so they hold the interpreter lock
        # only while a face prints (or nothing does), never across a durable point.
        checked: list[tuple[LeasedRecord, Checked]] = []
        for item in answer.records:
            self._quiet()
            checked.append((item, check(item.signed, self.keys)))
            time.sleep(0)
        if checked or answer.refused:
            self._db(lambda c: self._ingest(c, checked, answer.refused, sent_at))
        if checked:
            self.deps.on_records()
        got = len(answer.records) + len(answer.refused)
        return got == want and want == self.cfg.lease_batch

    def _ingest(
        self,
        conn: sqlite3.Connection,
        checked: list[tuple[LeasedRecord, Checked]],
        refused: list[RefusedLease],
        sent_at: tuple[float, float],
    ) -> None:
        for item, outcome in checked:
            rid = item.signed.record_id()
            lease = buffer.Lease(
                rid, item.lease_id, sent_at[0] + item.ttl_s, sent_at[1] + item.ttl_s, self._boot
            )
            buffer_checked(
                conn,
                outcome,
                lease,
                self.keys,
                self.data_key,
                grant=item.grant,
                station_id=self.client.station_id,
            )
        for bad in refused:
            if bad.record_id is None or bad.lease_id is None:
                # Nothing to report it under: the centre's lease runs out and it is
                # offered again (or fixed) there.
                log.warning("lease_item_refused", reason=bad.reason)
                continue
            ttl = bad.ttl_s if bad.ttl_s is not None and 0 < bad.ttl_s <= MAX_LEASE_TTL_S else 0
            lease = buffer.Lease(
                bad.record_id, bad.lease_id, sent_at[0] + ttl, sent_at[1] + ttl, self._boot
            )
            if granted(conn, bad.grant, self.keys, lease, station_id=self.client.station_id):
                refuse(conn, lease, bad.reason)

    def heartbeat(self) -> None:
        rationing, disk = self.rationing, self.deps.disk
        midnight = policy.local_midnight(rationing.tz)
        free_mb = disk.free_mb() if disk is not None else None
        stock, fleet = self._db(  # one read for both
            lambda c: (
                policy.stock_outlook(c, rationing),
                fleet_fields(c, self.board, midnight, free_mb),
            ),
            durable=False,
        )
        self._quiet()
        self.client.heartbeat(
            Heartbeat(
                **fleet,
                station_id=self.client.station_id,
                version=__version__,
                printer_state=heartbeat_state(self.deps.worker_problem(), self.board),
                blanks=stock["in_stock"],
                buffer=stock["buffered"],
                outbox=stock["outbox"],
                cards_today=stock["cards_today"],
                burn_rate_per_day=stock["burn_rate_per_day"],
                days_left=stock["days_left"],
                inspection=stock["inspection"],
            )
        )
