"""``GET /fleet`` and ``GET /fleet/<station>``: the fleet at a glance, server-rendered."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central import fleet_chart, fleet_light
from central.fleet_cache import FleetCache, Region, Station
from central.fleet_days import day_of
from central.fleet_light import Light
from central.http_error import HTTPError
from central.metrics import TextAnswer
from station import i18n
from station.i18n import N_

LIGHTS: tuple[Light, ...] = ("green", "amber", "red")
HTML = "text/html; charset=utf-8"
LIGHT_NAMES = {"green": N_("green"), "amber": N_("amber"), "red": N_("red")}
STATE_NAMES = {
    "starting": N_("starting"),
    "ready": N_("ready"),
    "printing": N_("printing"),
    "paused": N_("paused"),
    "error": N_("error"),
    "stopped": N_("stopped"),
}
UNKNOWN = N_("unknown")


@cache
def _env() -> Any:
    """The templates (jinja2 is in the ``central`` extra: imported when a page is asked
    for, so the stdlib server still imports on a station without it)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class FleetQuery(BaseModel):
    """The page's query parameters."""

    model_config = ConfigDict(extra="forbid")
    lang: i18n.Language = "id"
    sort: Literal["region", "station", "light", "stock", "days", "cards", "seen"] = "region"
    order: Literal["asc", "desc"] = "asc"
    light: Light | Literal[""] = ""
    province: str = Field("", pattern=r"^(\d{2})?$")
    regency: str = Field("", pattern=r"^(\d{4})?$")
    q: str = Field("", max_length=64)
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(100, ge=10, le=1000)


def parse_query(query: str, model: type[BaseModel] = FleetQuery) -> Any:
    params = parse_qs(query, keep_blank_values=True)
    twice = sorted(k for k, v in params.items() if len(v) > 1)
    if twice:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"query parameter {twice[0][:40]!r} given twice")
    try:
        return model.model_validate({k: v[0] for k, v in params.items()})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])[:40]
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"query parameter {where}: {err['msg']}") from exc


def light_of(st: Station, now: float) -> tuple[Light, tuple[str, ...]]:
    return fleet_light.light(st.judged, now - st.received)


@dataclass(slots=True)
class Row:
    st: Station
    light: Light
    reasons: tuple[str, ...]


@dataclass
class Group:
    region: Region
    counts: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


_SEVERITY = {"red": 0, "amber": 1, "green": 2}
_KEYS: dict[str, Callable[[Row], Any]] = {
    "region": lambda r: (r.st.region.province, r.st.region.regency, r.st.hb.station_id),
    "station": lambda r: r.st.hb.station_id,
    "light": lambda r: (_SEVERITY[r.light], r.st.hb.station_id),
    "stock": lambda r: (r.st.hb.blanks, r.st.hb.station_id),
    "days": lambda r: (
        r.st.hb.days_left if r.st.hb.days_left is not None else float("inf"),
        r.st.hb.station_id,
    ),
    "cards": lambda r: (r.st.hb.cards_today, r.st.hb.station_id),
    "seen": lambda r: (-r.st.received, r.st.hb.station_id),
}


def _texts(lang: i18n.Language, now: float) -> dict[str, Any]:
    def ago(ts: float) -> str:
        s = max(0, int(now - ts))
        if s < 60:
            return i18n._("just now", lang)
        if s < 3600:
            return i18n.render(N_("{n} min ago"), {"n": s // 60}, lang)
        if s < 86400:
            return i18n.render(N_("{n} h ago"), {"n": s // 3600}, lang)
        return i18n.render(N_("{n} days ago"), {"n": s // 86400}, lang)

    def num(value: float | None) -> str:
        if value is None:
            return "–"
        return i18n.decimal(round(value, 1)) if lang == "id" else f"{round(value, 1):g}"

    return {
        "_": lambda m: i18n._(m, lang),
        "state_name": lambda s: i18n._(STATE_NAMES.get(s or "", UNKNOWN), lang),
        "ago": ago,
        "num": num,
        "utc": lambda ts: dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "lang": lang,
        "spoiled": lambda hb: sum((hb.spoiled_today or {}).values()),
    }


def fleet_page(cache: FleetCache, query: str) -> TextAnswer:
    q: FleetQuery = parse_query(query)
    now = cache.db.clock()
    rows = [Row(st, *light_of(st, now)) for st in cache.stations()]
    provinces = sorted({r.st.region.province for r in rows} - {""})
    regions = sorted({r.st.region for r in rows}, key=lambda g: g.regency)
    if q.province:
        rows = [r for r in rows if r.st.region.province == q.province]
    if q.regency:
        rows = [r for r in rows if r.st.region.regency == q.regency]
    if q.q:
        needle = q.q.lower()
        rows = [r for r in rows if needle in r.st.hb.station_id.lower()]
    groups: dict[Region, Group] = {}
    for r in rows:
        group = groups.get(r.st.region)
        if group is None:
            group = groups[r.st.region] = Group(r.st.region, Counter())
        group.counts[r.light] += 1
    totals = Counter(r.light for r in rows)
    if q.light:
        rows = [r for r in rows if r.light == q.light]
    rows.sort(key=_KEYS[q.sort], reverse=q.order == "desc")
    pages = max(1, -(-len(rows) // q.per_page))
    page = min(q.page, pages)
    shown = rows[(page - 1) * q.per_page : page * q.per_page]
    base = q.model_dump(exclude_defaults=True)

    def url(**changes: Any) -> str:
        params = {**base, **changes}
        defaults = FleetQuery.model_fields
        kept = {k: v for k, v in params.items() if v != defaults[k].default}
        return "/fleet" + ("?" + urlencode(kept) if kept else "")

    def sort_url(key: str) -> str:
        order = "desc" if q.sort == key and q.order == "asc" else "asc"
        return url(sort=key, order=order, page=1)

    html = (
        _env()
        .get_template("fleet.html")
        .render(
            **_texts(q.lang, now),
            q=q,
            rows=shown,
            matched=len(rows),
            total_stations=sum(g.total for g in groups.values()),
            groups=sorted(groups.values(), key=lambda g: g.region.regency),
            totals=totals,
            lights=LIGHTS,
            provinces=[(c, Region(c, "").province_name) for c in provinces],
            regencies=[g for g in regions if g.regency],
            page=page,
            pages=pages,
            url=url,
            sort_url=sort_url,
            station_url=lambda sid: f"/fleet/{quote(sid, safe='')}" + url(page=1)[6:],
            grouped=q.sort == "region",
        )
    )
    return TextAnswer(body=html.encode(), media_type=HTML)


class StationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: i18n.Language = "id"


def station_page(cache: FleetCache, station_id: str, query: str) -> TextAnswer:
    q: StationQuery = parse_query(query, StationQuery)
    sid = unquote(station_id)
    now = cache.db.clock()
    st = cache.station(sid)
    if st is None:
        raise HTTPError(HTTPStatus.NOT_FOUND, f"no station {sid[:64]!r} has sent a heartbeat")
    light, reasons = light_of(st, now)
    days = cache.db.station_days(sid, day_of(now))
    html = (
        _env()
        .get_template("station.html")
        .render(
            **_texts(q.lang, now),
            st=st,
            hb=st.hb,
            light=light,
            reasons=reasons,
            chart=fleet_chart.chart(days, q.lang),
            back="/fleet" + ("?lang=en" if q.lang == "en" else ""),
        )
    )
    return TextAnswer(body=html.encode(), media_type=HTML)
