"""``station run``: wiring, threads, signals, systemd notify and watchdog.

Threads: the printer worker (one card at a time), the sync thread (network), the database
owner, and the main thread, which waits for signals and pings the watchdog while the
worker is alive. SIGTERM or SIGINT: the worker finishes the card in hand, then all stop.
"""

from __future__ import annotations

import signal
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from drivers.base import CHIP_DRIVERS, PRINTER_DRIVERS, CardPrinter, ChipChannel, load_driver
from drivers.errors import DeviceError
from station import store, systemd
from station.central.client import QueueClient, TlsSettings
from station.config import ConfigError, StationConfig, load_config
from station.crypto import DataKey, KeyFileError, bind_data_key
from station.db import Database
from station.pipeline import GoodCard, Hold, Pipeline, Started
from station.records import load_public_key
from station.status import Category, StatusBoard
from station.sync import SyncLoop

log = structlog.get_logger("station.daemon")


def trusted_keys(cfg: StationConfig) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for key_id, path in cfg.central.trusted_keys.items():
        try:
            keys[key_id] = load_public_key(path.read_text().strip())
        except OSError as exc:
            raise ConfigError(
                f"config error: central.trusted_keys.{key_id}: cannot read {path} "
                f"({exc.strerror}): point it at the centre's public key file") from exc
        except ValueError as exc:
            raise ConfigError(
                f"config error: central.trusted_keys.{key_id}: {path} does not hold a "
                "base64 Ed25519 public key") from exc
    return keys


def open_devices(cfg: StationConfig) -> tuple[CardPrinter, ChipChannel]:
    """Build the configured drivers; bad driver options name their key."""
    try:
        printer: CardPrinter = load_driver(PRINTER_DRIVERS, cfg.printer.driver).from_options(
            cfg.printer.options)
    except ValueError as exc:
        raise ConfigError(f"config error: printer.options: {exc}") from exc
    try:
        chip: ChipChannel = load_driver(CHIP_DRIVERS, cfg.chip.driver).from_options(
            cfg.chip.options, printer=printer)
    except ValueError as exc:
        raise ConfigError(f"config error: chip.options: {exc}") from exc
    return printer, chip


def make_client(cfg: StationConfig) -> QueueClient:
    c = cfg.central
    try:
        return QueueClient(c.url, cfg.station_id, timeout_s=c.timeout_s,
                           tls=TlsSettings(c.ca_file, c.client_cert, c.client_key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"config error: central.ca_file/client_cert/client_key: cannot load ({exc}): "
            "point them at readable PEM files") from exc


@dataclass
class Station:
    """Everything ``station run`` starts, so tests can run a station in-process too."""

    cfg: StationConfig
    db: Database
    board: StatusBoard
    pipeline: Pipeline
    sync: SyncLoop
    client: QueueClient
    stop_event: threading.Event
    worker: threading.Thread

    @classmethod
    def build(cls, cfg: StationConfig, *, data_key: DataKey | None = None,
              client: QueueClient | None = None) -> Station:
        keys = trusted_keys(cfg)
        printer, chip = open_devices(cfg)
        db = Database(cfg.db_path)
        try:
            data_key = db.run(lambda c: bind_data_key(c, cfg.key_path, data_key))
        except KeyFileError:
            db.close()
            raise
        board = StatusBoard(db)
        pipeline = Pipeline(db, printer, chip, keys=keys, data_key=data_key, cfg=cfg.pipeline,
                            chip_timeout_s=cfg.chip.connect_timeout_s, board=board,
                            rationing=cfg.rationing)
        client = client or make_client(cfg)
        stop_event = threading.Event()
        wake = threading.Event()
        sync = SyncLoop(db, client, cfg=cfg.central, keys=keys, data_key=data_key, board=board,
                        on_records=wake.set, rationing=cfg.rationing, quiet=pipeline.quiet)
        station = cls(cfg, db, board, pipeline, sync, client, stop_event,
                      threading.Thread(name="printer-worker", daemon=True))
        station.worker = threading.Thread(target=station._work, args=(wake,),
                                          name="printer-worker", daemon=True)
        return station

    def start(self) -> None:
        self.board.state(Category.STARTING, "opening printer and recovering")
        info = self.pipeline.printer.open()
        self.board.set(printer={"model": info.model, "serial": info.serial,
                                "firmware": info.firmware}, pid=_pid(), started_at=time.time())
        self.pipeline.recover()
        self.pipeline.faces.start()
        self.sync.start()
        self.worker.start()
        log.info("station_started", station_id=self.cfg.station_id, printer=info.model)

    def _work(self, wake: threading.Event) -> None:
        """The printer worker. The printer's status is asked at start, after a failure and
        while idle; between good cards the feed itself reports a printer that stopped.
        The quiet window (station/quiet.py) is shut from each card boundary until the
        card's face prints, and open whenever no card is under way."""
        try:
            self._print_while_running(wake)
        finally:
            self.pipeline.quiet.open()

    def _print_while_running(self, wake: threading.Event) -> None:
        retry = self.cfg.pipeline.device_retry_s
        quiet = self.pipeline.quiet
        pending: GoodCard | None = None
        check_printer = True
        while not self.stop_event.is_set():
            self.worker_beat = time.monotonic()
            if check_printer:
                pause = self.pipeline.printer_pause()
                if pause:
                    if pending is not None:
                        self.pipeline.card_boundary(pending, start=False)
                        pending = None
                    self.board.state(*pause)
                    quiet.open()
                    self.stop_event.wait(retry)
                    continue
            quiet.close()
            picked = self.pipeline.card_boundary(pending)
            pending = None
            if not isinstance(picked, Started):
                quiet.open()
                check_printer = True
                self.db.checkpoint()  # nothing printing: a quiet moment
                if isinstance(picked, Hold):
                    self.board.state(*picked.state())
                    self.stop_event.wait(retry)
                else:
                    self.board.state(Category.READY, "waiting for records")
                    wake.wait(1.0)
                    wake.clear()
                continue
            self.board.state(Category.PRINTING, "printing")
            outcome = self.pipeline.print_one(picked)
            pending = outcome.good
            check_printer = pending is None
            if outcome.result == "needs_inspection":
                self.board.state(Category.PAUSED, "a card needs inspection",
                                 "station inspect, then station resolve")
        if pending is not None:
            self.pipeline.card_boundary(pending, start=False)

    worker_beat: float = 0.0

    def worker_healthy(self, stuck_after_s: float = 300.0) -> bool:
        """Alive and not stuck in one device call (the watchdog stops pinging if so)."""
        return self.worker.is_alive() and time.monotonic() - self.worker_beat < stuck_after_s

    def stop(self) -> None:
        self.stop_event.set()
        if self.worker.is_alive():
            self.worker.join()
        self.sync.stop()
        self.pipeline.faces.close()
        self.board.state(Category.STOPPED, "stopped")
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
            self.board.error("config", f"reload refused: {exc}", "fix the file, reload again")
            return False
        self.pipeline.rationing = new.rationing
        self.sync.rationing = new.rationing
        self.sync.wake.set()
        log.info("config_reloaded", rationing=new.rationing.model_dump())
        self.board.set(reloaded_at=time.time(), rationing=new.rationing.model_dump())
        return True

    def _close_devices(self) -> None:
        for close in (self.pipeline.chip.disconnect, self.pipeline.printer.close):
            try:
                close()
            except DeviceError as exc:
                log.info("close_failed", error=type(exc).__name__, detail=str(exc))

    def summary(self) -> str:
        c = self.db.run(store.counts, durable=False)
        state: dict[str, Any] = self.board.get("state") or {}
        return (f"{state.get('category', '?')}: {c['cards_today']} cards today, "
                f"{c['in_stock']} blanks, {c['buffered']} buffered, {c['outbox']} to report")


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
            if station.worker_healthy():
                systemd.notify("WATCHDOG=1")
            systemd.notify(f"STATUS={station.summary()}")
    finally:
        systemd.notify("STOPPING=1")
        station.stop()
    return 0
