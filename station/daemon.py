"""``station run``: wiring, threads, signals, systemd notify and watchdog."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drivers.base import CHIP_DRIVERS, PRINTER_DRIVERS, CardPrinter, ChipChannel, load_driver
from drivers.errors import DeviceError
from station import faults, systemd
from station import metrics as station_metrics
from station.batchkeys import load_or_create_batch_key
from station.boot import boot_id
from station.config import ConfigError, StationConfig, load_config
from station.crypto import DataKey, KeyFileError, bind_data_key
from station.disk import DiskGuard
from station.faces.prefetch import FacePrefetcher
from station.i18n import Msg, os_error, stored
from station.link.client import QueueClient, TlsSettings
from station.outcome import GoodCard
from station.pipeline import Hold, Pipeline, PipelineDeps, Started
from station.quiet import QuietWindow
from station.records import load_public_key
from station.status import Category, StatusBoard
from station.store import figures, status
from station.store.db import Database
from station.store.states import CardOutcome
from station.sync import SyncDeps, SyncLoop

log = structlog.get_logger("station.daemon")

WORKER_DIED = Msg("the printer worker stopped")
WORKER_DIED_ACTION = Msg(
    "none: the daemon exits and systemd starts it again; if it "
    "repeats, see journalctl -u ektp-station"
)
WORKER_STUCK_ACTION = Msg(
    "check the printer and the encoder (power, cable); the watchdog restarts the daemon"
)
#: The interpreter's thread switch interval (Python's default is 5 ms). A thread waiting
#: for the database owner (the printer worker at a durable point) needs the interpreter
#: lock twice per round trip; while the sync thread runs Python (a lease's checks, JSON),
#: each hand-over waited up to the interval: ~10 ms a round trip, the per-card p99.
SWITCH_INTERVAL_S = 0.001
#: Exit status when the printer worker died (EX_SOFTWARE): systemd restarts the daemon.
EXIT_WORKER_DIED = 70


def trusted_keys(cfg: StationConfig) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for key_id, path in cfg.central.trusted_keys.items():
        try:
            keys[key_id] = load_public_key(path.read_text().strip())
        except OSError as exc:
            raise ConfigError(
                Msg(
                    "config error: central.trusted_keys.{key}: cannot read {path} ({error}): "
                    "point it at the centre's public key file",
                    key=key_id,
                    path=path,
                    error=os_error(exc),
                )
            ) from exc
        except ValueError as exc:
            raise ConfigError(
                Msg(
                    "config error: central.trusted_keys.{key}: {path} does not hold a base64 "
                    "Ed25519 public key",
                    key=key_id,
                    path=path,
                )
            ) from exc
    return keys


def open_devices(cfg: StationConfig) -> tuple[CardPrinter, ChipChannel]:
    """Build the configured drivers; bad driver options name their key."""
    try:
        printer: CardPrinter = load_driver(PRINTER_DRIVERS, cfg.printer.driver).from_options(
            cfg.printer.options
        )
    except ValueError as exc:
        raise ConfigError(Msg("config error: printer.options: {error}", error=str(exc))) from exc
    try:
        chip: ChipChannel = load_driver(CHIP_DRIVERS, cfg.chip.driver).from_options(
            cfg.chip.options, printer=printer
        )
    except ValueError as exc:
        raise ConfigError(Msg("config error: chip.options: {error}", error=str(exc))) from exc
    return printer, chip


def make_client(cfg: StationConfig) -> QueueClient:
    c = cfg.central
    try:
        return QueueClient(
            c.url,
            cfg.station_id,
            timeout_s=c.timeout_s,
            tls=TlsSettings(c.ca_file, c.client_cert, c.client_key),
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            Msg(
                "config error: central.ca_file/client_cert/client_key: cannot load ({error}): "
                "point them at readable PEM files",
                error=str(exc),
            )
        ) from exc


def _nothing() -> None:
    """No-op default of :attr:`Station.on_worker_exit`."""


@dataclass
class Station:
    """Everything ``station run`` starts, so tests can run a station in-process too. The
    station owns the devices, the face helper, the quiet window and the disk guard; the
    pipeline and the sync loop are handed them (:class:`PipelineDeps`, :class:`SyncDeps`)."""

    cfg: StationConfig
    db: Database
    board: StatusBoard
    printer: CardPrinter
    chip: ChipChannel
    faces: FacePrefetcher
    quiet: QuietWindow
    disk: DiskGuard
    pipeline: Pipeline
    sync: SyncLoop
    client: QueueClient
    stop_event: threading.Event
    worker: threading.Thread

    @classmethod
    def build(
        cls,
        cfg: StationConfig,
        *,
        data_key: DataKey | None = None,
        client: QueueClient | None = None,
    ) -> Station:
        keys = trusted_keys(cfg)
        printer, chip = open_devices(cfg)
        db = Database(cfg.db_path)
        try:
            data_key = db.run(lambda c: bind_data_key(c, cfg.key_path, data_key))
            load_or_create_batch_key(cfg)  # as the service user: batches can be sealed to it
        except KeyFileError:
            db.close()
            raise
        board = StatusBoard(db)
        faces, quiet = FacePrefetcher(data_key), QuietWindow()
        disk = DiskGuard(cfg.state_dir, cfg.storage.reserve_mb, trip_s=cfg.pipeline.device_retry_s)
        pipeline = Pipeline(
            PipelineDeps(
                db,
                printer,
                chip,
                cfg=cfg.pipeline,
                chip_timeout_s=cfg.chip.connect_timeout_s,
                board=board,
                faces=faces,
                quiet=quiet,
                rationing=cfg.rationing,
            )
        )
        client = client or make_client(cfg)
        wake = threading.Event()
        station: Station | None = None

        def worker_problem() -> str | None:
            return None if station is None else station.worker_problem()

        sync = SyncLoop(
            SyncDeps(
                db,
                client,
                cfg=cfg.central,
                keys=keys,
                data_key=data_key,
                board=board,
                quiet=quiet,
                rationing=cfg.rationing,
                on_records=wake.set,
                worker_problem=worker_problem,
                disk=disk,
            )
        )
        station = cls(
            cfg,
            db,
            board,
            printer,
            chip,
            faces,
            quiet,
            disk,
            pipeline,
            sync,
            client,
            threading.Event(),
            threading.Thread(name="printer-worker", daemon=True),
        )
        station.worker = threading.Thread(
            target=station._work, args=(wake,), name="printer-worker", daemon=True
        )
        return station

    def start(self) -> None:
        """Come up whatever the printer's state: what recovery cannot finish yet (cover
        open, printer unreachable) shows as the state and is retried by the worker."""
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.board.state(Category.STARTING, Msg("opening printer and recovering"))
        self.board.set(pid=_pid(), started_at=time.time())
        model = "unknown"
        try:
            info = self.printer.open()
        except DeviceError as exc:
            log.warning("printer_open_failed", error=type(exc).__name__, detail=str(exc))
        else:
            model = info.model
            self.board.set(
                printer={"model": info.model, "serial": info.serial, "firmware": info.firmware}
            )
        self._count_crashes()
        self.pipeline.recover()
        for rid in self.db.run(faults.quarantine_poison):
            log.error("record_quarantined", record_id=rid, reason="poison")
        if self.pipeline.recovery.pending:
            self.board.state(*self.pipeline.recovery.pending)
        self.faces.start()
        self.sync.start()
        self.metrics_stop = station_metrics.start(
            self.cfg.metrics,
            station_metrics.registry(self.db, self.board, lambda: self.sync.rationing),
        )
        self.worker_beat = time.monotonic()
        self.worker.start()
        log.info("station_started", station_id=self.cfg.station_id, printer=model)

    def _count_crashes(self) -> None:
        """Count a crash against the record(s) in hand if the last run died of a fatal
        signal on this boot (a power cut or a kill -9 is nobody's fault)."""
        this_boot = boot_id()
        last_boot = self.db.run(status.get_status, durable=False).get("boot_id")
        crashed = faults.take_crash_log(self.cfg.state_dir) and last_boot == this_boot
        if crashed:
            log.error("previous_run_crashed", traceback=str(self.cfg.state_dir / "crash.log.last"))
        self.db.run(lambda c: faults.count_crashes(c, crashed=crashed))
        self.board.set(boot_id=this_boot)

    def _work(self, wake: threading.Event) -> None:
        """The printer worker. The printer's status is asked at start, after a failure and
        while idle; between good cards the feed itself reports a printer that stopped.
        The quiet window (station/quiet.py) is shut from each card boundary until the
        card's face prints, and open whenever no card is under way. Should it die all the
        same (its storage failed), the status says so and the main thread is woken to
        exit, so systemd starts the daemon again."""
        try:
            self._print_while_running(wake)
        except BaseException as exc:
            log.critical("printer_worker_died", error=type(exc).__name__, where=faults.where(exc))
            with contextlib.suppress(Exception):  # the status table may be what failed
                self.board.state(Category.ERROR, WORKER_DIED, WORKER_DIED_ACTION)
            raise
        finally:
            self.quiet.open()
            self.on_worker_exit()

    def _print_while_running(self, wake: threading.Event) -> None:
        retry = self.cfg.pipeline.device_retry_s
        quiet = self.quiet
        pending: GoodCard | None = None
        check_printer = True
        while not self.stop_event.is_set():
            self.worker_beat = time.monotonic()
            if self.disk.check():  # station/disk.py: no card starts on a nearly full disk
                pending = self._wait_for_disk(pending)
                continue
            if check_printer:
                pause = self.pipeline.recovery.pause() or self.pipeline.printer_pause()
                if pause:
                    if pending is not None:
                        self.pipeline.card_boundary(pending, start=False)
                        pending = None
                    self.board.state(*pause)
                    quiet.open()
                    self.stop_event.wait(retry)
                    continue
            quiet.close()
            try:
                picked = self.pipeline.card_boundary(pending)
            except sqlite3.OperationalError as exc:
                self.disk.trip(exc)  # the disk filled since the check: wait (else raised)
                continue  # the boundary rolled back whole: ``pending`` is kept for later
            pending = None
            if not isinstance(picked, Started):
                quiet.open()
                check_printer = True
                self.db.checkpoint()  # nothing printing: a quiet moment
                if isinstance(picked, Hold):
                    self.board.state(*picked.state())
                    self.stop_event.wait(retry)
                else:
                    self.board.state(Category.READY, Msg("waiting for records"))
                    wake.wait(1.0)
                    wake.clear()
                continue
            self.board.state(Category.PRINTING, Msg("printing"))
            outcome = self.pipeline.print_one(picked)
            pending = outcome.good
            check_printer = pending is None
            if outcome.result is CardOutcome.NEEDS_INSPECTION:
                self.board.state(
                    Category.PAUSED,
                    Msg("a card needs inspection"),
                    Msg("station inspect, then station resolve"),
                )
            elif outcome.crashed:  # a moment before the next record, so a fault cannot spin
                quiet.open()
                self.stop_event.wait(retry)
        if pending is not None:
            self.pipeline.card_boundary(pending, start=False)

    worker_beat: float = 0.0
    #: Stops the local /metrics endpoint ([metrics] listen); None while it is off.
    metrics_stop: Callable[[], None] | None = None

    def _wait_for_disk(self, pending: GoodCard | None) -> GoodCard | None:
        """The disk is nearly full: the previous card's result is committed (the reserve
        is kept for it) unless the disk is full outright, then it is kept for later; no
        card starts; the status says what to do. Returns what is still to commit."""
        if pending is not None:
            try:
                self.pipeline.card_boundary(pending, start=False)
                pending = None
            except sqlite3.OperationalError as exc:
                self.disk.trip(exc)
        self.board.state(*self.disk.state())
        self.quiet.open()
        self.stop_event.wait(self.cfg.pipeline.device_retry_s)
        return pending

    #: The printer worker counts as stuck after this long without a loop (one card, or
    #: one wait for the printer, takes far less).
    stuck_after_s: float = 300.0
    #: Called when the printer worker ends (the main thread exits if it was not asked to).
    on_worker_exit: Callable[[], None] = _nothing

    def worker_problem(self) -> str | None:
        """What is wrong with the printer worker, from the thread itself (not from what
        it last wrote): stopped, or stuck in one step; None while it works."""
        if self.worker.ident is None:
            return None  # not started yet
        if not self.worker.is_alive():
            return None if self.stop_event.is_set() else WORKER_DIED
        idle = time.monotonic() - self.worker_beat
        if idle > self.stuck_after_s:
            return Msg(
                "the printer worker is stuck (no progress for {seconds} s)", seconds=f"{idle:.0f}"
            )
        return None

    def check_health(self) -> str | None:
        """The main thread's look at the worker: a problem becomes the station's state
        (ERROR with the action) and the liveness ``station status`` reads."""
        problem = self.worker_problem()
        if problem is not None:
            action = WORKER_DIED_ACTION if problem == WORKER_DIED else WORKER_STUCK_ACTION
            self.board.state(Category.ERROR, problem, action)
        self.board.set(
            liveness={
                "at": time.time(),
                "worker": problem or "ok",
                "worker_msg": stored(problem) if problem else None,
            }
        )
        return problem

    def stop(self) -> None:
        died = self.worker_problem() == WORKER_DIED
        self.stop_event.set()
        if self.worker.is_alive():
            self.worker.join()
        self.sync.stop()
        if self.metrics_stop is not None:
            self.metrics_stop()
        self.faces.close()
        if not died:  # else the ERROR stays: the status says why the daemon went
            self.board.state(Category.STOPPED, Msg("stopped"))
        self._close_devices()
        self.client.close()
        self.db.close()
        log.info("station_stopped")

    def reload(self, path: Path | None) -> bool:
        """Re-read the config file and apply the rationing rules; a bad file is refused
        with its one line, and the rules in force stay."""
        if path is None:
            return False
        try:
            new = load_config(path)
        except ConfigError as exc:
            log.error("reload_refused", detail=str(exc))
            self.board.error(
                "config",
                Msg("reload refused: {error}", error=str(exc)),
                Msg("fix the file, reload again"),
            )
            return False
        self.pipeline.rationing = new.rationing
        self.sync.rationing = new.rationing
        self.sync.wake.set()
        log.info("config_reloaded", rationing=new.rationing.model_dump())
        self.board.set(reloaded_at=time.time(), rationing=new.rationing.model_dump())
        return True

    def _close_devices(self) -> None:
        for close in (self.chip.disconnect, self.printer.close):
            try:
                close()
            except DeviceError as exc:
                log.info("close_failed", error=type(exc).__name__, detail=str(exc))

    def summary(self) -> str:
        c = self.db.run(figures.counts, durable=False)
        state: dict[str, Any] = self.board.get("state") or {}
        problem = self.worker_problem()
        head = f"error: {problem}" if problem else state.get("category", "?")
        return (
            f"{head}: {c['cards_today']} cards today, "
            f"{c['in_stock']} blanks, {c['buffered']} buffered, {c['outbox']} to report"
        )


def _pid() -> int:
    import os

    return os.getpid()


def run(cfg: StationConfig, path: Path | None = None) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP re-reads ``path`` and applies what may change
    without a restart (the rationing rules). Returns the exit code for the CLI."""
    wake = threading.Event()
    pending: set[int] = set()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal", signal=signal.Signals(signum).name)
        pending.add(signum)
        wake.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    station = Station.build(cfg)
    crash_log = faults.arm_crash_log(cfg.state_dir)
    station.on_worker_exit = wake.set
    code = 0
    try:
        station.start()
        systemd.notify("READY=1")
        tick = min(systemd.watchdog_interval() or 5.0, 5.0)
        while True:
            if wake.wait(tick):
                wake.clear()
                if pending & {signal.SIGTERM, signal.SIGINT}:
                    break
                if signal.SIGHUP in pending:
                    pending.discard(signal.SIGHUP)
                    station.reload(path)
            problem = station.check_health()
            if problem == WORKER_DIED:
                log.critical("exiting", reason=problem, exit_code=EXIT_WORKER_DIED)
                systemd.notify(f"STATUS=error: {problem}")
                code = EXIT_WORKER_DIED
                break
            if problem is None:
                systemd.notify("WATCHDOG=1")
            systemd.notify(f"STATUS={station.summary()}")
    finally:
        systemd.notify("STOPPING=1")
        station.stop()
        faults.disarm_crash_log(crash_log)
    return code
