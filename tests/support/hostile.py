"""A seeded corpus of hostile print-ready records: each a mutation of a good seeded record.

Every :class:`Hostile` breaks exactly one rule and names the field the station's refusal
must name. ``layer`` says where the mutation sits: ``record`` (the record's content,
re-signed with the centre's key, so only the content check can refuse it), ``signed``
(the signed envelope: signature, key id) and ``lease`` (the lease item of a lease answer:
lease id, ttl). :func:`lease_item` turns one into the JSON-ready dict a centre would send.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import io
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from central.seed import KEY_ID, make_photo, make_record, make_signature
from station.records import signature_of

Layer = str  # "record" | "signed" | "lease"
Mutate = Callable[[dict[str, Any]], None]


class Relative(str):
    """A value computed from today's date, shown by what it is (the corpus stays the same
    from one run to the next)."""

    def __new__(cls, value: str, label: str) -> Relative:
        obj = super().__new__(cls, value)
        obj.label = label
        return obj

    label: str

    def __repr__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Hostile:
    field: str  # the field path the refusal must name ("person.name", "ttl_s", ...)
    what: str  # what the mutation does (for test ids and failure messages)
    layer: Layer
    mutate: Mutate  # applied in place to a deep copy of the layer's dict


# -- characters and values -------------------------------------------------------------

#: Characters no card carries: controls, bidi, invisible, private-use, tags, look-alikes.
EVIL_CHARS: tuple[str, ...] = (
    "\x00",
    "\x01",
    "\x07",
    "\x08",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x1f",
    "\x7f",
    "\x85",
    "\x9b",
    "\xa0",
    "\u00ad",
    "\u034f",
    "\u061c",
    "\u180e",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u2028",
    "\u2029",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2060",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\ufeff",
    "\ue000",
    "\uf8ff",
    "\U000f0000",
    "\U00100000",
    "\U000e0001",
    "\U000e0041",
    "\U000e007f",
    "\u0301" * 40,
    "e\u0301\u0301",
    "\ufffd",
    "\u0663",
    "\uff13",
    "\u0410",
    "\u03a9",
    "\u4e2d",
    "\U0001f600",
    "\u00df",
    "<",
    ">",
    '"',
    "\\",
    "@",
    "#",
    "$",
    "%",
    "&",
    "*",
    "+",
    "=",
    "_",
    ";",
    ":",
    "!",
    "?",
    "`",
    "~",
    "|",
    "{",
    "}",
    "[",
    "]",
    "^",
    "\u3000",
    "\u2003",
    "\u2212",
    "\u2019",
    "\u00d7",
)
WRONG_TYPES: tuple[Any, ...] = (None, 5, 1.5, True, ["A"], {"a": "b"})

TEXT_FIELDS: dict[str, int] = {  # field path -> most characters the card takes
    "person.name": 120,
    "person.birth_place": 60,
    "person.address": 200,
    "person.kel_desa": 60,
    "person.kecamatan": 60,
    "person.occupation": 60,
    "person.nationality": 40,
    "region.regency": 60,
    "issue_place": 40,
}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _get(obj: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        obj = obj[part]
    return obj


def _setter(path: str, value: Any) -> Mutate:
    head, _, last = path.rpartition(".")
    if isinstance(value, Relative):
        value = str(value)

    def mutate(obj: dict[str, Any]) -> None:
        (_get(obj, head) if head else obj)[last] = copy.deepcopy(value)

    return mutate


def _deleter(path: str) -> Mutate:
    head, _, last = path.rpartition(".")

    def mutate(obj: dict[str, Any]) -> None:
        del (_get(obj, head) if head else obj)[last]

    return mutate


def _each(mutations: list[Mutate]) -> Mutate:
    def mutate(obj: dict[str, Any]) -> None:
        for m in mutations:
            m(obj)

    return mutate


# -- images ----------------------------------------------------------------------------


def _jpeg(size: tuple[int, int], fmt: str = "JPEG", mode: str = "RGB") -> str:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode()


def _patched_jpeg_size(photo: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header claiming ``width`` x ``height`` (a bomb's header)."""
    pos = 2
    while pos < len(photo):
        marker, length = photo[pos + 1], struct.unpack(">H", photo[pos + 2 : pos + 4])[0]
        if marker in (0xC0, 0xC2):
            return photo[: pos + 5] + struct.pack(">HH", height, width) + photo[pos + 9 :]
        pos += 2 + length
    raise ValueError("no SOF")


def _patched_png_size(png: bytes, width: int, height: int) -> bytes:
    return png[:16] + struct.pack(">II", width, height) + png[24:]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_values(rng: random.Random) -> dict[str, list[tuple[str, Any]]]:
    photo, sig = make_photo(rng), make_signature(rng)
    photo_bad = [
        ("a PNG", _b64(sig)),
        ("a GIF", _jpeg((160, 200), "GIF", "P")),
        ("a BMP", _jpeg((160, 200), "BMP")),
        ("a WebP", _jpeg((160, 200), "WEBP")),
        ("a bomb header 20000x25000", _b64(_patched_jpeg_size(photo, 20000, 25000))),
        ("a header of 0x0", _b64(_patched_jpeg_size(photo, 0, 0))),
        ("a header of 1600x2000", _b64(_patched_jpeg_size(photo, 1600, 2000))),
        ("truncated", _b64(photo[: len(photo) // 2])),
        ("only the SOI", _b64(photo[:2])),
        ("not base64", "!!!!"),
        ("base64 with a newline", _b64(photo)[:40] + "\n" + _b64(photo)[40:]),
        ("a data URI", "data:image/jpeg;base64," + _b64(photo)),
        ("too many bytes", _b64(photo + bytes(300 * 1024))),
        ("50x60", _jpeg((50, 60))),
        ("landscape", _jpeg((200, 160))),
        ("square", _jpeg((200, 200))),
        ("very tall", _jpeg((100, 1000))),
        ("empty", ""),
        ("random bytes", _b64(rng.randbytes(900))),
        ("non-ASCII", _b64(photo)[:20] + "\u00e9" + _b64(photo)[21:]),
    ]
    sig_bad = [
        ("a JPEG", _b64(photo)),
        ("10x5", _jpeg((10, 5), "PNG", "1")),
        ("2000x100", _b64(_patched_png_size(sig, 2000, 100))),
        ("a bomb header", _b64(_patched_png_size(sig, 100000, 100000))),
        ("tall", _jpeg((60, 160), "PNG", "1")),
        ("truncated", _b64(sig[: len(sig) // 2])),
        ("damaged data", _b64(sig[:40] + bytes(20) + sig[60:])),
        ("not base64", "@@@@"),
        ("empty", ""),
        ("too many bytes", _b64(sig + bytes(70 * 1024))),
        ("a GIF", _jpeg((160, 60), "GIF", "P")),
    ]
    return {"photo_jpeg": photo_bad, "signature_png": sig_bad}


# -- the record layer ------------------------------------------------------------------


def _text_mutations(good: dict[str, Any]) -> Iterator[tuple[str, str, Mutate]]:
    for path, longest in TEXT_FIELDS.items():
        base = str(_get(good, path))
        for ch in EVIL_CHARS:
            cut = min(2, len(base))
            yield path, f"U+{ord(ch[-1]):04X} inside", _setter(path, base[:cut] + ch + base[cut:])
        yield path, "one character too long", _setter(path, "A" * (longest + 1))
        yield path, "10,000 characters", _setter(path, "AB " * 3333 + "A")
        yield path, "empty", _setter(path, "")
        yield path, "spaces only", _setter(path, "   ")
        yield path, "leading space", _setter(path, " " + base)
        yield path, "punctuation only", _setter(path, "-./")
        for value in WRONG_TYPES:
            yield path, f"a {type(value).__name__}", _setter(path, value)
    yield "person.name", "a digit", _setter("person.name", "BUDI 2")


def _date_mutations() -> Iterator[tuple[str, str, Mutate]]:
    today = _today()
    later = Relative((today + dt.timedelta(days=3)).isoformat(), "3 days ahead")
    formats = [
        "20000101",
        "01-01-2000",
        "2000-1-1",
        "2000-01-01T00:00:00",
        "2000-01-01 ",
        "\u0662\u0660\u0660\u0660-\u0660\u0661-\u0660\u0661",
        "2000-02-30",
        "2000-13-01",
        "",
        "yesterday",
        946684800,
    ]
    for path, bad in (
        (
            "person.birth_date",
            ["2999-01-01", later, "1899-12-31", "0001-01-01", "1800-05-05", *formats, None],
        ),
        (
            "issue_date",
            ["2099-01-01", later, "1900-01-01", "2008-12-31", "0001-01-01", *formats, None],
        ),
    ):
        for value in bad:
            yield path, f"{value!r}", _setter(path, value)
    now = dt.datetime.now(dt.UTC)
    for value in [
        "2099-01-01T00:00:00+00:00",
        Relative((now + dt.timedelta(days=3)).isoformat(), "3 days ahead"),
        "2024-01-01T00:00:00",
        "2024-01-01",
        "2008-12-31T23:00:00+00:00",
        "1970-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:00",
        "now",
        "",
        "2024-01-01T00:00:00+25:00",
        0,
        1e12,
        None,
        "2024-01-01T00:00:00+07:00 ",
        "\u0662\u0660\u0662\u0664-01-01T00:00:00Z",
    ]:
        yield "enrolled_at", f"{value!r}", _setter("enrolled_at", value)
    # Rules across fields: named by the later field.
    yield (
        "issue_date",
        "issued before birth",
        _each(
            [
                _setter("person.birth_date", today.isoformat()),
                _setter("issue_date", (today - dt.timedelta(days=30)).isoformat()),
            ]
        ),
    )
    yield (
        "enrolled_at",
        "enrolled before birth",
        _each(
            [
                _setter("person.birth_date", today.isoformat()),
                _setter("enrolled_at", (now - dt.timedelta(days=400)).isoformat()),
            ]
        ),
    )


def _vocabulary_mutations() -> Iterator[tuple[str, str, Mutate]]:
    closed: dict[str, list[Any]] = {
        "person.sex": ["L", "laki-laki", "MALE", "", "PEREMPUAN ", "WANITA"],
        "person.blood_type": ["C", "a", "AB+", "", "O\u200b", 0],
        "person.religion": [
            "islam",
            "ATHEIS",
            "",
            "ISLAM ",
            "ISLAM\u200b",
            "KRISTEN PROTESTAN",
            "I\u0300SLAM",
        ],
        "person.marital_status": ["MENIKAH", "kawin", "", "JANDA", "KAWIN\n"],
        "region.province": [
            "jawa barat",
            "JAWA BARAT ",
            "ATLANTIS",
            "",
            "JAWA\u00a0BARAT",
            "JAWA BARAT\u202e",
        ],
        "kind": ["second", "", "FIRST", "first "],
        "urgent": ["vip", "", 1, "Pilgrimage"],
        "record_id": [
            "",
            "A" * 65,
            "PRR 1",
            "PRR/1",
            "PRR-1\n",
            "PRR-\u0661",
            "../etc",
            "PRR-\u202e1",
            "PRR-\u00e91",
        ],
        "person.rt_rw": [
            "\u0660\u0660\u0661/\u0660\u0660\u0662",
            "\uff11\uff12\uff13/456",
            "1/2",
            "0001/002",
            "001-002",
            "001/002\n",
            "",
            "abc/def",
            "001/002/003",
            "\u06f0\u06f0\u06f1/\u06f0\u06f0\u06f2",
            "\u0966\u0966\u0967/\u0966\u0966\u0968",
        ],
        "person.valid_until": [
            "SELAMANYA",
            "",
            "31-12-2099",
            "seumur hidup",
            "2030-01-01",
            "SEUMUR HIDUP\u200b",
        ],
    }
    for path, values in closed.items():
        for value in [*values, *WRONG_TYPES[int(path == "urgent") : 3]]:  # urgent may be null
            yield path, f"{value!r}", _setter(path, value)
    issue = _today()
    for until, what in (
        ("SEUMUR HIDUP", "for life"),
        ((issue - dt.timedelta(days=1)).strftime("%d-%m-%Y"), "before issue"),
        ((issue + dt.timedelta(days=365 * 50)).strftime("%d-%m-%Y"), "50 years"),
        ("31-02-2030", "31 February"),
    ):
        yield (
            "person.valid_until",
            f"foreigner, {what}",
            _each(
                [
                    _setter("person.nationality", "WNA"),
                    _setter("person.valid_until", until),
                    _setter("issue_date", issue.isoformat()),
                ]
            ),
        )


def _nik_mutations(good: dict[str, Any]) -> Iterator[tuple[str, str, Mutate]]:
    nik: str = good["person"]["nik"]
    arabic = "".join(chr(0x0660 + int(c)) for c in nik)
    bad = [
        nik[:15],
        nik + "1",
        nik[:6] + "A" + nik[7:],
        arabic,
        "\uff13" + nik[1:],
        "99" + nik[2:],
        nik[:2] + "00" + nik[4:],
        nik[:4] + "00" + nik[6:],
        nik[:6] + "32" + nik[8:],
        nik[:6] + "72" + nik[8:],
        nik[:6] + "00" + nik[8:],
        nik[:8] + "13" + nik[10:],
        nik[:8] + "00" + nik[10:],
        nik[:12] + "0000",
        nik[:6] + "290201" + nik[12:],
        "",
        " " * 16,
        nik[:8] + " " + nik[9:],
        nik + "\u200b",
        "-" + nik[1:],
        "1" * 40,
    ]
    for value in [*bad, int(nik), None]:
        yield "person.nik", f"{value!r}"[:30], _setter("person.nik", value)


def _structure_mutations(good: dict[str, Any]) -> Iterator[tuple[str, str, Mutate]]:
    for key in good:
        if key != "urgent":
            yield key, "missing", _deleter(key)
    for key in good["person"]:
        if key not in ("blood_type", "nationality", "valid_until"):
            yield f"person.{key}", "missing", _deleter(f"person.{key}")
    for key in good["region"]:
        yield f"region.{key}", "missing", _deleter(f"region.{key}")
    yield "surname", "an unknown field", _setter("surname", "X")
    yield "person.surname", "an unknown field", _setter("person.surname", "X")
    yield "region.island", "an unknown field", _setter("region.island", "JAWA")
    for path in ("person", "region"):
        for shape in ("X", ["X"], None, 5):
            yield path, f"a {type(shape).__name__}", _setter(path, shape)
    step = good["chip_script"][0]
    scripts: tuple[tuple[Any, str], ...] = (
        ([], "empty"),
        ("x", "a string"),
        (None, "null"),
        ([{}], "an empty step"),
        ([{"apdu": "ZZ"}], "non-hex APDU"),
        ([{"apdu": "00A4000C0501"}], "a malformed APDU"),
        ([{**step, "extra": 1}], "an unknown key"),
        ([step] * 1025, "1,025 steps"),
        ([{**step, "target": "both"}], "an unknown target"),
        ([{**step, "expect_sw": ["90"]}], "a short SW pattern"),
        ([{**step, "apdu": "\u0660\u0660A4"}], "Arabic-Indic hex"),
    )
    for value, what in scripts:
        yield "chip_script", what, _setter("chip_script", value)


def record_mutations(good: dict[str, Any], rng: random.Random) -> Iterator[Hostile]:
    """Every record-layer mutation of ``good``."""
    yield from (Hostile(f, w, "record", m) for f, w, m in _text_mutations(good))
    yield from (Hostile(f, w, "record", m) for f, w, m in _date_mutations())
    yield from (Hostile(f, w, "record", m) for f, w, m in _vocabulary_mutations())
    yield from (Hostile(f, w, "record", m) for f, w, m in _nik_mutations(good))
    yield from (Hostile(f, w, "record", m) for f, w, m in _structure_mutations(good))
    for path, values in image_values(rng).items():
        for what, value in [*values, *((f"a {type(v).__name__}", v) for v in WRONG_TYPES[:3])]:
            yield Hostile(path, what, "record", _setter(path, value))


def envelope_mutations() -> Iterator[Hostile]:
    """Mutations of the signed envelope and of the lease item around it."""

    def flip(item: dict[str, Any]) -> None:
        sig = item["signed"]["signature"]
        item["signed"]["signature"] = ("B" if sig[0] == "A" else "A") + sig[1:]

    def tamper(item: dict[str, Any]) -> None:
        item["signed"]["record"]["person"]["name"] = "SOMEONE ELSE"

    signed: list[tuple[str, str, Mutate]] = [
        ("signature", "one character changed", flip),
        ("signature", "the record changed after signing", tamper),
        ("signature", "not base64", _setter("signed.signature", "%%%")),
        ("signature", "empty", _setter("signed.signature", "")),
        ("signed.signature", "10,000 characters", _setter("signed.signature", "A" * 10000)),
        ("signature key id", "an unknown key id", _setter("signed.key_id", "central-9")),
        ("signed.key_id", "a control character", _setter("signed.key_id", "central-1\x1b")),
        ("signed.key_id", "empty", _setter("signed.key_id", "")),
        ("signed.key_id", "a number", _setter("signed.key_id", 1)),
        ("signed.signature", "missing", _deleter("signed.signature")),
        ("signed.grant_all", "an unknown field", _setter("signed.grant_all", True)),
        ("signed.record", "a list", _setter("signed.record", ["X"])),
        ("signed.record", "missing", _deleter("signed.record")),
        ("signed", "null", _setter("signed", None)),
        ("signed", "a string", _setter("signed", "X")),
    ]
    lease: list[tuple[str, str, Mutate]] = (
        [
            ("ttl_s", f"{value!r}", _setter("ttl_s", value))
            for value in (
                float("inf"),
                float("-inf"),
                float("nan"),
                -1.0,
                0,
                1e12,
                10 * 86400,
                None,
                "soon",
                [600],
            )
        ]
        + [
            ("lease_id", what, _setter("lease_id", value))
            for what, value in (
                ("empty", ""),
                ("1,000 characters", "L" * 1000),
                ("a control character", "L-1\x00"),
                ("null", None),
                ("a number", 7),
                ("RLO", "L-\u202e1"),
                ("a space", "L 1"),
            )
        ]
        + [
            ("lease_id", "missing", _deleter("lease_id")),
            ("ttl_s", "missing", _deleter("ttl_s")),
            ("signed", "missing", _deleter("signed")),
            ("priority", "an unknown field", _setter("priority", 1)),
        ]
    )
    yield from (Hostile(f, w, "signed", m) for f, w, m in signed)
    yield from (Hostile(f, w, "lease", m) for f, w, m in lease)


def corpus(seed: int = 0, bases: int = 7) -> list[tuple[int, Hostile]]:
    """The whole corpus: (index of the good base record, mutation); bases rotate."""
    rng = random.Random(f"hostile:{seed}")
    good = make_record(1, seed)
    out: list[tuple[int, Hostile]] = []
    for i, hostile in enumerate([*record_mutations(good, rng), *envelope_mutations()]):
        out.append((1 + i % bases, hostile))
    return out


@functools.lru_cache(maxsize=64)
def good_record(index: int, seed: int = 0) -> dict[str, Any]:
    """Seeded good record ``index`` (cached: do not change it)."""
    return make_record(index, seed)


def lease_item(
    index: int,
    hostile: Hostile | None,
    key: Ed25519PrivateKey,
    *,
    seed: int = 0,
    lease_id: str | None = None,
    ttl_s: float = 600.0,
    record_id: str | None = None,
) -> dict[str, Any]:
    """The lease answer item (JSON-ready) for record ``index`` with ``hostile`` applied;
    a record-layer mutation is signed after it is applied (a valid signature)."""
    record = copy.deepcopy(good_record(index, seed))
    if record_id is not None:
        record["record_id"] = record_id
    if hostile is not None and hostile.layer == "record":
        hostile.mutate(record)
    item: dict[str, Any] = {
        "lease_id": lease_id or f"L-{index:06d}",
        "ttl_s": ttl_s,
        "signed": {"record": record, "key_id": KEY_ID, "signature": signature_of(record, key)},
    }
    if hostile is not None and hostile.layer != "record":
        hostile.mutate(item)
    return item
