"""The stations' latest heartbeats, parsed once per heartbeat, for ``/metrics`` and
``/fleet``."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from central import fleet_light, metrics
from central.names import PROVINCES, REGENCIES
from central.queue_db import QueueDB
from station.link import protocol as p

#: The regency code a station id starts with: "3273-01", "ST-3273-01", "3273.KEC.2".
_REGION = re.compile(r"^(?:[A-Za-z]+[-_.])?(\d{2})(\d{2})(?!\d)")
REGENCY_NAMES = {prov + code: name for prov, pairs in REGENCIES.items() for code, name in pairs}


@dataclass(frozen=True)
class Region:
    province: str  # two digits, "" when the station id names none
    regency: str  # four digits (province + regency), "" when none

    @property
    def province_name(self) -> str:
        return PROVINCES.get(self.province, self.province)

    @property
    def regency_name(self) -> str:
        return REGENCY_NAMES.get(self.regency, self.regency)


def region_of(station_id: str) -> Region:
    m = _REGION.match(station_id)
    return Region(m[1], m[1] + m[2]) if m else Region("", "")


@dataclass(frozen=True)
class Station:
    hb: p.Heartbeat
    received: float
    count: int
    region: Region
    lines: tuple[str, ...]  # metrics.station_lines
    judged: fleet_light.Judged


def _station(body: str, received: float, count: int) -> Station:
    hb = p.Heartbeat.model_validate_json(body)
    return Station(
        hb,
        received,
        count,
        region_of(hb.station_id),
        metrics.station_lines(hb, received, count),
        fleet_light.judge(hb),
    )


class FleetCache:
    def __init__(self, db: QueueDB) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._stations: dict[str, Station] = {}

    def stations(self) -> list[Station]:
        """Every station that sent a heartbeat, by station id."""
        index = self.db.heartbeat_index()
        with self._lock:
            old = self._stations
            stale = [
                sid
                for sid, received, count in index
                if (st := old.get(sid)) is None or (st.count, st.received) != (count, received)
            ]
            fresh = {**old}
            for body, received, count in self.db.heartbeat_bodies(stale):
                st = _station(body, received, count)
                fresh[st.hb.station_id] = st
            known = {sid for sid, _t, _n in index}
            self._stations = {sid: fresh[sid] for sid in sorted(known) if sid in fresh}
            return list(self._stations.values())

    def station(self, station_id: str) -> Station | None:
        """One station's latest heartbeat (None: it never sent one)."""
        rows = self.db.heartbeat_bodies([station_id])
        return _station(*rows[0]) if rows else None

    def metrics(self) -> metrics.TextAnswer:
        stations = self.stations()
        return metrics.exposition(
            [s.hb.station_id for s in stations],
            [s.received for s in stations],
            [s.lines for s in stations],
            self.db.clock(),
        )
