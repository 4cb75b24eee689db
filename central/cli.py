"""``station central serve | seed | batch``: run the reference queue server, fill its
queue, issue offline batches and ingest the results carried back."""

from __future__ import annotations

import argparse
import signal
import sqlite3
import threading
from pathlib import Path
from types import FrameType

from central.engines import is_dsn
from central.queue_db import DEFAULT_LEASE_HOLD_S, SchemaError
from central.seed import seed
from central.server import CentralServer
from central.tls import ServerTls, TlsConfigError
from station.cli.errors import CliError, Failed, Refused
from station.i18n import Msg, _
from station.logs import info_unless_configured


def add_central_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``central serve`` and ``central seed`` under the station's CLI."""
    central = subparsers.add_parser("central", help=_("reference central queue server"))
    sub = central.add_subparsers(dest="central_command", required=True)

    serve = sub.add_parser("serve", help=_("run the queue server until SIGTERM/SIGINT"))
    serve.add_argument(
        "--db",
        type=_db_arg,
        required=True,
        help=_("the queue: a SQLite file, or postgresql://user@host:port/db"),
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8470)
    serve.add_argument("--lease-ttl", type=float, default=600.0, help=_("lease ttl, seconds"))
    serve.add_argument(
        "--lease-hold",
        type=float,
        default=DEFAULT_LEASE_HOLD_S,
        help=_("seconds an expired lease stays held for a silent station (0: expired means free)"),
    )
    serve.add_argument(
        "--key-dir",
        type=Path,
        default=None,
        help=_("the signing key for grants (created on first use; default: keys/ beside --db)"),
    )
    serve.add_argument("--tls-cert", type=Path, help=_("serve HTTPS with this certificate (PEM)"))
    serve.add_argument("--tls-key", type=Path, help=_("the certificate's private key (PEM)"))
    serve.add_argument(
        "--client-ca",
        type=Path,
        help=_("mutual TLS: refuse clients without a certificate from this CA"),
    )
    serve.add_argument(
        "--server",
        choices=("asgi", "stdlib"),
        default="asgi",
        help=_(
            "asgi: FastAPI under uvicorn (the central extra); stdlib: "
            "the single-process http.server (default: asgi)"
        ),
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help=_("uvicorn worker processes sharing the socket (asgi only)"),
    )
    serve.set_defaults(func=cmd_serve)

    seed_p = sub.add_parser("seed", help=_("add N synthetic signed records to the queue"))
    seed_p.add_argument("n", type=int)
    seed_p.add_argument(
        "--db",
        type=_db_arg,
        required=True,
        help=_("the queue: a SQLite file, or postgresql://user@host:port/db"),
    )
    seed_p.add_argument("--key-dir", type=Path, required=True)
    seed_p.add_argument("--seed", type=int, default=0)
    seed_p.set_defaults(func=cmd_seed)

    from central.batches import add_central_batch_commands

    add_central_batch_commands(sub)


def _db_arg(value: str) -> Path | str:
    return value if is_dsn(value) else Path(value)


def _server_tls(args: argparse.Namespace) -> ServerTls | None:
    if args.tls_cert is None and args.tls_key is None and args.client_ca is None:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise TlsConfigError("--tls-cert and --tls-key go together (and --client-ca needs both)")
    return ServerTls(args.tls_cert, args.tls_key, args.client_ca)


#: What stops the queue server from starting: a TLS file, the socket, the database.
_START_ERRORS = (TlsConfigError, OSError, TypeError, sqlite3.Error, SchemaError)


def _start_failed(exc: Exception) -> CliError:
    if isinstance(exc, TlsConfigError):
        return Refused(str(exc))
    return Failed(Msg("cannot start the queue server: {error}", error=str(exc)))


def cmd_serve(args: argparse.Namespace) -> int:
    if args.lease_ttl <= 0 or args.lease_hold < 0:
        raise Refused(Msg("--lease-ttl must be positive, --lease-hold not negative"))
    if args.workers < 1 or (args.workers > 1 and args.server != "asgi"):
        raise Refused(Msg("--workers must be at least 1, and above 1 only with --server asgi"))
    info_unless_configured()  # keep stdout to the URL line unless asked otherwise
    if args.server == "asgi":
        return _serve_asgi(args)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        server = CentralServer(
            args.db,
            host=args.host,
            port=args.port,
            lease_ttl_s=args.lease_ttl,
            lease_hold_s=args.lease_hold,
            tls=_server_tls(args),
            key_dir=args.key_dir,
        )
    except _START_ERRORS as exc:
        raise _start_failed(exc) from exc
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        print(f"listening on {server.url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _serve_asgi(args: argparse.Namespace) -> int:
    try:
        from central.asgi_server import Settings, serve
    except ImportError as exc:
        raise Refused(
            Msg(
                "the ASGI centre needs the central extra ({module} missing): "
                "pip install -e '.[central]', or serve with --server stdlib",
                module=exc.name,
            )
        ) from exc
    settings = Settings(
        str(args.db), args.lease_ttl, args.lease_hold, str(args.key_dir) if args.key_dir else None
    )
    # uvicorn handles SIGTERM/SIGINT while it runs and raises them again once stopped:
    # with these handlers that ends here, exit status 0.
    previous = {s: signal.signal(s, lambda _n, _f: None) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        serve(
            settings,
            host=args.host,
            port=args.port,
            tls=_server_tls(args),
            workers=args.workers,
            on_listening=lambda url: print(f"listening on {url}", flush=True),
        )
    except _START_ERRORS as exc:
        raise _start_failed(exc) from exc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise Refused(Msg("N must be at least 1"))
    try:
        ids = seed(args.db, args.n, seed=args.seed, key_dir=args.key_dir)
    except (OSError, sqlite3.Error, SchemaError) as exc:
        raise Failed(Msg("cannot seed: {error}", error=str(exc))) from exc
    print(f"seeded {len(ids)} records ({ids[0]} to {ids[-1]})", flush=True)
    return 0
