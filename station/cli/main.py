"""The ``station`` command: the daemon and the technician's verbs."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from typing import Any

from station import i18n
from station.cli.common import add_lang_option, config, read_db, with_db
from station.cli.errors import CliError, Failed, Refused
from station.cli.status import cmd_status
from station.config import ConfigError, check_state_dir, config_path
from station.crypto import KeyFileError
from station.i18n import N_, Msg, _, tr
from station.store import attempts, status
from station.store.states import RecordStatus


def cmd_run(args: argparse.Namespace) -> int:
    from station import logs
    from station.daemon import run

    cfg = config(args)
    check_state_dir(cfg)
    logs.setup(cfg.log_level, cfg.log_format)
    return run(cfg, config_path(args.config))


def cmd_reload(args: argparse.Namespace) -> int:
    """Ask the running daemon to re-read its configuration (SIGHUP)."""
    snap = with_db(args, status.get_status)
    pid, state = snap.get("pid"), (snap.get("state") or {}).get("category")
    if not pid or state == "stopped":
        raise Failed(Msg("the daemon is not running (start it: systemctl start ektp-station)"))
    try:
        os.kill(int(pid), signal.SIGHUP)
    except ProcessLookupError as exc:
        raise Failed(Msg("the daemon (pid {pid}) is not running", pid=pid)) from exc
    print(
        _("reload requested (pid {pid}); station status shows when it took effect").format(pid=pid)
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    rows = read_db(args, attempts.inspection_list)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(_("nothing needs inspection"))
    for r in rows:
        print(
            _("attempt {attempt}  record {record}  blank {serial}").format(
                attempt=r["attempt_id"], record=r["record_id"], serial=r["blank_serial"] or "?"
            )
        )
        print(f"  {tr(r['reason'])}")
    if rows:
        print(
            "\n"
            + _(
                "Look in the output and reject trays, then: station resolve ATTEMPT "
                "--good [--serial S] | --spoiled"
            )
        )
    from station.store.ingest import nik_warning_list  # Pillow and the layout: this verb only

    _print_nik_warnings(with_db(args, nik_warning_list))
    return 0


def _print_nik_warnings(warnings: list[dict[str, Any]]) -> None:
    """Records printed although their NIK disagrees with them (a warning, not an error)."""
    if not warnings:
        return
    print("\n" + _("NIK warnings (printed as they are; latest first):"))
    for w in warnings:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(w["at"]))
        print(
            "  "
            + _("record {record}  {when}  {detail}").format(
                record=w["record_id"],
                when=when,
                detail="; ".join(tr(part) for part in str(w["detail"]).split("; ")),
            )
        )


def cmd_resolve(args: argparse.Namespace) -> int:
    cfg = config(args)

    def act(conn: sqlite3.Connection) -> RecordStatus:
        return attempts.resolve(
            conn,
            args.attempt,
            good=args.good,
            serial=args.serial,
            max_attempts=cfg.pipeline.max_attempts,
        )

    try:
        became = with_db(args, act)
    except (KeyError, ValueError) as exc:
        raise Refused(exc.args[0]) from exc
    word = {
        RecordStatus.DONE: _("recorded as a good card; the result will be reported"),
        RecordStatus.QUEUED: _("blank counted spoiled; the record will be printed again"),
        RecordStatus.FAILED: _("blank counted spoiled; attempts used up, reported as failed"),
    }[became]
    print(_("attempt {attempt}: {outcome}").format(attempt=args.attempt, outcome=word))
    return 0


DESCRIPTION = N_("""The station command: the daemon and the technician's verbs.

    station status                      printer, blanks, buffer, outbox, link, last error
    station inspect | resolve ATTEMPT   cards that need a person to look in the trays
    station blanks | spoiled | report   blank stock, spoiled cards, reports for the province
    station doctor                      printer and encoder checks, then a verdict
    station batch | preview | demo      offline batches, a card face, the demo
    station run | reload                the daemon (systemd runs it), re-read the config
""")


def build_parser() -> argparse.ArgumentParser:
    # The one import from station into central: the reference server's verbs are its own.
    from central.cli import add_central_commands
    from station.cli.batch import add_batch_commands
    from station.cli.blanks import add_blank_commands
    from station.cli.demo import add_demo_command
    from station.cli.face import add_face_commands

    parser = argparse.ArgumentParser(
        prog="station",
        description=_(DESCRIPTION),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        help=_("TOML config (default: $STATION_CONFIG or /etc/ektp-station/station.toml)"),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help=_("run the daemon")).set_defaults(func=cmd_run)
    sub.add_parser(
        "reload", help=_("re-read the configuration (rationing) without a restart")
    ).set_defaults(func=cmd_reload)
    p = sub.add_parser("status", help=_("show the station's state"))
    p.add_argument("--json", action="store_true", help=_("the output as JSON"))
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("inspect", help=_("list attempts that need inspection"))
    p.add_argument("--json", action="store_true", help=_("the output as JSON"))
    p.set_defaults(func=cmd_inspect)
    p = sub.add_parser("resolve", help=_("close an attempt after looking at the card"))
    p.add_argument("attempt", type=int)
    verdict = p.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--good", action="store_true", help=_("a good card is in the output tray"))
    verdict.add_argument("--spoiled", action="store_true", help=_("the card is spoiled"))
    p.add_argument("--serial", help=_("the card's blank serial, if read"))
    p.set_defaults(func=cmd_resolve)
    add_blank_commands(sub)
    add_face_commands(sub)
    add_central_commands(sub)
    add_batch_commands(sub)
    add_demo_command(sub)
    add_lang_option(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Whatever the caller's umask (022 under sudo): what the station writes (database, keys,
    # berita acara, batch files) is its owner's alone.
    os.umask(0o077)
    words = list(sys.argv[1:] if argv is None else argv)
    i18n.set_language(i18n.early_language(words))  # --help and argparse's own errors
    i18n.translate_argparse()
    args = build_parser().parse_args(words)
    # Until the config is read (cli_common.config; a config error is shown before it is),
    # --lang, STATION_LANGUAGE (the config key's override) or the locale variables decide.
    i18n.set_language(i18n.choose(args.lang, os.environ.get("STATION_LANGUAGE")))
    return run_verb(args)


#: What a verb's error exits with: 1 the system failed, 2 the request was refused, 78
#: (EX_CONFIG) the configuration is wrong: systemd does not restart-loop on it
#: (RestartPreventExitStatus). Anything else is a bug and shows its traceback.
EXIT_CODES: dict[type[Exception], int] = {
    Refused: Refused.exit_code,
    Failed: Failed.exit_code,
    ConfigError: 78,
    KeyFileError: 78,
}


def run_verb(args: argparse.Namespace) -> int:
    """Run the parsed verb; its error is printed once, in the reader's language, and
    becomes the exit code of :data:`EXIT_CODES`."""
    try:
        code: int = args.func(args)
    except (CliError, ConfigError, KeyFileError) as exc:
        print(error_line(exc), file=sys.stderr)
        return next(c for kind, c in EXIT_CODES.items() if isinstance(exc, kind))
    return code


def error_line(exc: Exception) -> str:
    """The line an error prints: a config or key file error says what it is itself."""
    if isinstance(exc, CliError):
        return _("error: {message}").format(message=tr(exc.message))
    return tr(str(exc))


if __name__ == "__main__":
    sys.exit(main())
