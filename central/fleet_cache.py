"""The stations' latest heartbeats, parsed once per heartbeat, for ``/metrics`` and
``/fleet``."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from central import metrics
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
    body: str
    region: Region
    lines: tuple[str, ...]  # metrics.station_lines


class FleetCache:
    def __init__(self, db: QueueDB) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._stations: dict[str, Station] = {}

    def stations(self) -> list[Station]:
        """Every station that sent a heartbeat, by station id."""
        rows = self.db.heartbeat_rows()
        with self._lock:
            old, fresh = self._stations, {}
            for sid, body, received, count in rows:
                st = old.get(sid)
                if st is None or (st.count, st.received, st.body) != (count, received, body):
                    hb = p.Heartbeat.model_validate_json(body)
                    lines = metrics.station_lines(hb, received, count)
                    st = Station(hb, received, count, body, region_of(sid), lines)
                fresh[sid] = st
            self._stations = fresh
        return list(fresh.values())

    def metrics(self) -> metrics.TextAnswer:
        stations = self.stations()
        return metrics.exposition(
            [(s.hb.station_id, s.received, s.lines) for s in stations], self.db.clock()
        )
