"""The CLI's refusals: a verb raises one of these, ``station.cli.main`` prints it once
(``error: …`` in the reader's language) and exits with the code of its kind."""

from __future__ import annotations

from typing import ClassVar


class CliError(Exception):
    """A verb that cannot do what was asked; ``message`` is a :class:`station.i18n.Msg`
    or a message id (or the English text of one), rendered when it is printed."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Failed(CliError):
    """The system could not do it: a file, the database, a socket (exit 1)."""

    exit_code = 1


class Refused(CliError):
    """The request itself cannot be done as given: a bad argument, a rule of the
    ledger, a file that fails its checks (exit 2)."""

    exit_code = 2
