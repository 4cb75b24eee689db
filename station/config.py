"""Station configuration: one TOML file plus ``STATION_*`` environment overrides."""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from drivers.base import CHIP_DRIVERS, PRINTER_DRIVERS
from station.i18n import N_, Msg, os_error
from station.policy import RationingConfig

DEFAULT_PATH = Path("/etc/ektp-station/station.toml")


class ConfigError(Exception):
    """A configuration problem; ``str()`` is the one line shown to the technician."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CentralConfig(_Section):
    url: str = Field(pattern=r"^https?://[^\s/]+(/.*)?$")
    #: key id → file holding the centre's Ed25519 public key (base64, raw 32 bytes).
    trusted_keys: dict[str, Path] = Field(min_length=1)
    timeout_s: float = Field(default=10.0, gt=0)
    #: CA bundle that signs the centre's certificate (https only; default: system CAs).
    ca_file: Path | None = None
    #: Client certificate and key for mutual TLS (both or neither).
    client_cert: Path | None = None
    client_key: Path | None = None
    #: Records to hold before the print rate is measured.
    buffer_target: int = Field(default=50, ge=1, le=10_000)
    #: Once measured: enough records for this many hours of printing …
    buffer_hours: float = Field(default=8.0, gt=0)
    #: … but never more personal records at rest on this PC than this.
    max_records_at_rest: int = Field(default=1000, ge=1, le=100_000)
    #: A printer stopped this long (jam, cover, ribbon) hands its leases back ("paused").
    release_paused_after_s: float = Field(default=1800.0, gt=0)
    #: How often the database gives back the pages of purged records.
    vacuum_every_h: float = Field(default=24.0, gt=0)
    lease_batch: int = Field(default=50, ge=1, le=1000)
    outbox_batch: int = Field(default=200, ge=1, le=1000)
    sync_interval_s: float = Field(default=2.0, gt=0)
    renew_every_s: float = Field(default=60.0, gt=0)
    heartbeat_every_s: float = Field(default=30.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _cert_with_key(self) -> CentralConfig:
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key is set but client_cert is not: set both or neither")
        return self


class DeviceConfig(_Section):
    driver: str
    options: dict[str, Any] = Field(default_factory=dict)

    #: the driver registry this role chooses from, and its name in messages
    registry: ClassVar[dict[str, str]] = {}
    role: ClassVar[str] = "device"

    @field_validator("driver")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in cls.registry:
            raise ValueError(f"unknown {cls.role} driver {value!r} (known: {sorted(cls.registry)})")
        return value


class PrinterConfig(DeviceConfig):
    registry = PRINTER_DRIVERS
    role = "printer"
    driver: str = "sim"


class ChipConfig(DeviceConfig):
    registry = CHIP_DRIVERS
    role = "chip"
    driver: str = "sim"
    connect_timeout_s: float = Field(default=5.0, gt=0)


class PipelineConfig(_Section):
    max_attempts: int = Field(default=3, ge=1, le=10)
    lease_margin_s: float = Field(default=60.0, ge=0)
    device_retry_s: float = Field(default=5.0, gt=0)


class OfficeConfig(_Section):
    """The office named on its papers (berita acara, reports); blanks are filled by hand."""

    #: e.g. "Dinas Kependudukan dan Pencatatan Sipil"
    name: str = Field(default="Dinas Kependudukan dan Pencatatan Sipil", max_length=120)
    regency: str = Field(default="", max_length=80)  # e.g. "Kabupaten Bogor"
    province: str = Field(default="", max_length=80)  # e.g. "Jawa Barat"
    #: Where the papers are signed (default: the regency, else the station id).
    place: str = Field(default="", max_length=80)
    head_name: str = Field(default="", max_length=120)
    head_nip: str = Field(default="", pattern=r"^[0-9 ]{0,24}$")
    #: Put before the office's name: "Kepala" + "Dinas Kependudukan …" + regency.
    head_title: str = Field(default="Kepala", max_length=120)


class StorageConfig(_Section):
    #: No card starts with less than this free on the state dir's filesystem (MB).
    reserve_mb: float = Field(default=64.0, ge=0)


class MetricsConfig(_Section):
    #: host:port of the station's own Prometheus endpoint (GET /metrics); unset: none.
    listen: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:\[\]-]+:[0-9]{1,5}$")

    @field_validator("listen")
    @classmethod
    def _port_in_range(cls, v: str | None) -> str | None:
        if v is not None and not 0 < int(v.rpartition(":")[2]) < 65536:
            raise ValueError("the port must be 1-65535")
        return v


class StationConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STATION_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    station_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    state_dir: Path = Path("/var/lib/ektp-station")
    #: AES-GCM key for personal data at rest; created (mode 0600) if missing.
    data_key_file: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "json"
    #: The technician's language (CLI, status, papers); unset: LANG, else Indonesian.
    language: Literal["id", "en"] | None = None
    central: CentralConfig
    printer: PrinterConfig = PrinterConfig()
    chip: ChipConfig = ChipConfig()
    pipeline: PipelineConfig = PipelineConfig()
    rationing: RationingConfig = RationingConfig()
    office: OfficeConfig = OfficeConfig()
    storage: StorageConfig = StorageConfig()
    metrics: MetricsConfig = MetricsConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (passed in as init values).
        return (env_settings, init_settings)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "station.db"

    @property
    def key_path(self) -> Path:
        return self.data_key_file or self.state_dir / "data.key"


def config_path(cli_value: str | None) -> Path:
    if cli_value:
        return Path(cli_value)
    return Path(os.environ.get("STATION_CONFIG") or DEFAULT_PATH)


def load_config(path: Path) -> StationConfig:
    """Read and validate the configuration; :class:`ConfigError` is one clear line."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            Msg("config file {path} not found: pass --config PATH or set STATION_CONFIG", path=path)
        ) from None
    except PermissionError:
        raise ConfigError(
            Msg("config file {path} is not readable by this user", path=path)
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            Msg(
                "config file {path} is a directory: pass --config with the "
                "path of the TOML file itself",
                path=path,
            )
        ) from None
    except OSError as exc:
        raise ConfigError(
            Msg("config file {path} cannot be read ({error})", path=path, error=os_error(exc))
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            Msg(
                "config file {path} is not UTF-8 text (byte {byte}): save it as UTF-8",
                path=path,
                byte=exc.start,
            )
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            Msg("config file {path} is not valid TOML: {error}", path=path, error=str(exc))
        ) from exc
    try:
        return StationConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, path)) from exc


def check_state_dir(cfg: StationConfig) -> None:
    """The state dir exists (or is created, 0700) and this user may write in it; else
    :class:`ConfigError` naming ``state_dir``."""
    path = cfg.state_dir
    fix = Msg(
        "set state_dir in the config, or run as the service user (uid {uid})", uid=path_owner(path)
    )
    not_dir = Msg(
        "config error: state_dir {path} is not a directory: set state_dir to a directory", path=path
    )
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(not_dir) from None
    except OSError as exc:
        raise ConfigError(
            Msg(
                "config error: state_dir {path} cannot be created ({error}): {fix}",
                path=path,
                error=os_error(exc),
                fix=fix,
            )
        ) from exc
    if not path.is_dir():
        raise ConfigError(not_dir)
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(
            Msg(
                "config error: state_dir {path} is not writable by this user (uid {uid}): {fix}",
                path=path,
                uid=os.geteuid(),
                fix=fix,
            )
        )
    st = path.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        path.chmod(0o700)  # personal data and keys live here: the owner's alone


def path_owner(path: Path) -> str:
    """The uid owning ``path`` or its nearest existing parent ("?" if none can be read)."""
    for p in (path, *path.parents):
        try:
            return str(p.stat().st_uid)
        except OSError:
            continue
    return "?"


#: pydantic's reasons for the common types, as templates of its own English (so the text
#: stays pydantic's, and the catalog has them in Indonesian).
PYDANTIC_REASONS = {
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_type": N_("Input should be a valid integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "float_type": N_("Input should be a valid number"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "bool_type": N_("Input should be a valid boolean"),
    "string_type": N_("Input should be a valid string"),
    "dict_type": N_("Input should be a valid dictionary"),
    "list_type": N_("Input should be a valid list"),
    "literal_error": N_("Input should be {expected}"),
    "enum": N_("Input should be {expected}"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
}


def _reason(kind: str, text: str, ctx: dict[str, Any]) -> str:
    """pydantic's reason as a message when it is one of the common kinds (and reads as
    pydantic wrote it), else its own text."""
    template = PYDANTIC_REASONS.get(kind)
    if template is not None:
        try:
            msg = Msg(template, **{k: str(v) for k, v in ctx.items()})
        except (KeyError, IndexError, ValueError):
            msg = None
        if msg == text:
            return msg
    return text.removeprefix("Value error, ")


def _one_line(exc: ValidationError, path: Path) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    env = "STATION_" + "__".join(str(p) for p in err["loc"]).upper()
    kind = err["type"]
    if kind == "missing":
        return Msg(
            "config error: {key} is required but missing: set it in {path} or with {env}",
            key=key,
            path=path,
            env=env,
        )
    if kind == "extra_forbidden":
        return Msg(
            "config error: unknown key {key} in {path}: remove it or check its spelling",
            key=key,
            path=path,
        )
    msg = _reason(err["type"], err["msg"], err.get("ctx") or {})
    return Msg(
        "config error: {key} is invalid ({reason}; got {value}): set it in {path} or with {env}",
        key=key,
        reason=msg,
        value=repr(err.get("input")),
        path=path,
        env=env,
    )


def buffer_target(cfg: CentralConfig, rate_per_hour: float | None) -> int:
    """Records to hold: ``buffer_hours`` of work at the measured print rate (before it is
    measured, ``buffer_target``), never more than ``max_records_at_rest`` personal
    records on this PC. Blanks in stock and the quota cap it further."""
    if rate_per_hour is None:
        return min(cfg.buffer_target, cfg.max_records_at_rest)
    return min(cfg.max_records_at_rest, max(1, math.ceil(cfg.buffer_hours * rate_per_hour)))
