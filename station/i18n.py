"""The technician's language: Bahasa Indonesia by default, English on request."""

from __future__ import annotations

import errno
import gettext
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

Language = Literal["id", "en"]
LANGUAGES: tuple[Language, ...] = ("id", "en")
DEFAULT: Language = "id"
DOMAIN = "station"
LOCALE_DIR = Path(__file__).with_name("locale")

_current: Language = DEFAULT


@cache
def _catalog(lang: Language) -> gettext.NullTranslations:
    if lang == "en":  # the message ids are the English texts
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[lang])


def from_environment(environ: Mapping[str, str] | None = None) -> Language | None:
    """The language the POSIX locale variables ask for, if it is one we speak."""
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "")
        if not value:
            continue
        code = value.split(".")[0].split("_")[0].lower()
        if code in LANGUAGES:
            return code
        # The first variable set decides (as in POSIX); C/POSIX or another language
        # says nothing about our two, so the default applies.
        return None
    return None


def choose(
    cli: str | None, configured: str | None = None, environ: Mapping[str, str] | None = None
) -> Language:
    """``--lang``, else the config's ``language``, else the locale variables, else id."""
    for value in (cli, configured):
        if value in LANGUAGES:
            return value
    return from_environment(environ) or DEFAULT


def set_language(lang: Language) -> None:
    global _current  # one language per command, set at its start
    _current = lang


def language() -> Language:
    return _current


def decimal(value: float) -> str:
    """6,1 in Indonesian (the comma is the decimal sign), 6.1 in English."""
    text = f"{value:g}"
    return text.replace(".", ",") if _current == "id" else text


def _(message: str, lang: Language | None = None) -> str:
    """``message`` (an English message id) in the current language."""
    if not message:  # gettext("") is the catalog's header
        return message
    return _catalog(lang or _current).gettext(message)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention Babel extracts
    """Mark ``message`` for the catalog; it is translated where it is shown."""
    return message


def render(
    message: str, params: Mapping[str, Any] | None = None, lang: Language | None = None
) -> str:
    """A stored message (id + parameters) in the reader's language."""
    text = _(message, lang)
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        # A translation whose placeholders disagree (the catalog test forbids it):
        # the English text is still right.
        return message.format(**params)


class Msg(str):
    """A message that remembers how it was made: its value is the English text (for logs,
    --json and code that wants a string), ``template`` is its message id and ``params``
    its parameters, so it can be stored (:meth:`stored`) and shown later in the reader's
    language (:func:`show`). Parameters that are themselves a :class:`Msg` are translated
    too (a printer state's name inside "the printer is {state}")."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Msg:
        text = template.format(**params) if params else template
        self = super().__new__(cls, text)
        self.template, self.params = template, params
        return self

    def stored(self) -> dict[str, Any]:
        return {
            "code": self.template,
            "params": {k: v.stored() if isinstance(v, Msg) else v for k, v in self.params.items()},
        }


def stored(message: str) -> dict[str, Any]:
    """What the daemon writes for a message: its code (message id) and parameters."""
    return message.stored() if isinstance(message, Msg) else {"code": message, "params": {}}


def show(entry: Mapping[str, Any] | str | None, lang: Language | None = None) -> str:
    """A stored message (:func:`stored`) in the reader's language; plain text as it is
    (translated if it is a message id the catalog knows)."""
    if entry is None:
        return ""
    if isinstance(entry, str):
        return translate_text(entry, lang)
    if not entry.get("params"):  # a code, or text stored as one: read back as text is
        return translate_text(str(entry.get("code", "")), lang)
    params = {
        k: show(v, lang) if isinstance(v, Mapping) and "code" in v else v
        for k, v in (entry.get("params") or {}).items()
    }
    return render(str(entry.get("code", "")), params, lang)


def tr(message: str, lang: Language | None = None) -> str:
    """Any message the station made (a :class:`Msg`, a message id, or the English text of
    one) in the reader's language."""
    return show(stored(message) if isinstance(message, Msg) else message, lang)


def translate_text(text: str, lang: Language | None = None) -> str:
    """English ``text`` in the reader's language: a message id as it is, or the English
    rendering of a template (a reason the database keeps as text, e.g. an inspection
    note), whose parameters are read back from the text. Unknown text stays as it is
    (a device's own technical detail)."""
    lang = lang or _current
    if lang == "en" or not text:
        return text
    exact = _(text, lang)
    if exact != text:
        return exact
    for template, pattern in _patterns(lang):
        m = pattern.fullmatch(text)
        if m:
            params = {k: translate_text(v, lang) for k, v in m.groupdict().items()}
            return render(template, params, lang)
    return text


@cache
def _patterns(lang: Language) -> list[tuple[str, re.Pattern[str]]]:
    """The catalog's templates as patterns, the most specific (longest literal) first."""
    ids = [m for m in getattr(_catalog(lang), "_catalog", {}) if isinstance(m, str) and "{" in m]
    out = []
    for template in ids:
        parts = re.split(r"\{(\w+)[^{}]*\}", template)
        if len(set(parts[1::2])) != len(parts[1::2]):
            continue  # a placeholder used twice: not read back
        regex = "".join(
            re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts)
        )
        out.append((template, re.compile(regex, re.S), sum(len(p) for p in parts[::2])))
    out.sort(key=lambda t: -t[2])
    return [(t, p) for t, p, _n in out]


#: The system's error texts an operator meets (a file missing, no permission, disk full).
_OS_ERRORS = {
    errno.ENOENT: N_("no such file or directory"),
    errno.EACCES: N_("permission denied"),
    errno.EPERM: N_("permission denied"),
    errno.ENOSPC: N_("no space left on the disk"),
    errno.EROFS: N_("the disk is read-only"),
    errno.EISDIR: N_("it is a directory"),
    errno.ENOTDIR: N_("not a directory"),
}


def os_error(exc: OSError) -> Msg:
    """An OSError's reason as a message (English: the system's own words)."""
    known = _OS_ERRORS.get(exc.errno or 0)
    return Msg(known) if known else Msg(exc.strerror or type(exc).__name__)


#: argparse's own texts a technician meets (usage, help headings, errors), for the catalog.
ARGPARSE = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("the following arguments are required: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("invalid %(type)s value: %(value)r"),
    N_("unrecognized arguments: %s"),
    N_("expected one argument"),
    N_("not allowed with argument %s"),
    N_("one of the arguments %s is required"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
)


def translate_argparse() -> None:
    """argparse's usage, help headings and errors in the current language (it looks
    them up through its module's ``_`` at the moment it writes them)."""
    import argparse

    argparse._ = _  # type: ignore[attr-defined]


def early_language(argv: list[str], environ: Mapping[str, str] | None = None) -> Language:
    """The language of a command before its arguments are parsed (for --help and
    argparse's errors): ``--lang`` on the command line, else the config's ``language``
    if the config can be read, else STATION_LANGUAGE, the locale variables, Indonesian."""
    env = os.environ if environ is None else environ
    lang = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--lang"), None)
    lang = lang or next((a.split("=", 1)[1] for a in argv if a.startswith("--lang=")), None)
    configured = env.get("STATION_LANGUAGE")
    if lang not in LANGUAGES and configured not in LANGUAGES:
        configured = _configured_language(argv, env)
    return choose(lang, configured, env)


def _configured_language(argv: list[str], env: Mapping[str, str]) -> str | None:
    import tomllib

    path = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"), None)
    path = path or env.get("STATION_CONFIG") or "/etc/ektp-station/station.toml"
    try:
        with open(path, "rb") as fh:
            value = tomllib.load(fh).get("language")
    except (OSError, ValueError):  # unreadable or not TOML: the config's own check says so
        return None
    return value if isinstance(value, str) else None
