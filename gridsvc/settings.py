"""All configuration, one settings class per concern, every variable prefixed ``GRIDSVC_``."""

from __future__ import annotations

import secrets
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geodata.limits import DEFAULT_LIMITS as _LIMITS
from geodata.limits import InputLimits

#: The repository (or install) root; the embedded database and secrets live below ``var/``.
PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Placeholder secrets that must never reach production.
INSECURE_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev", "development"})


def _config(prefix: str = "GRIDSVC_") -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore")


class AppSettings(BaseSettings):
    """Where and how the service runs."""

    model_config = _config()

    environment: Literal["development", "production", "test"] = "development"
    var_dir: Path = PROJECT_ROOT / "var"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    #: Reverse proxies (addresses or networks, comma-separated; "*" for any) whose
    #: X-Forwarded-For / X-Forwarded-Proto are believed. Empty (the default): none, so a client
    #: cannot pick its own address for the sign-in limits by sending the header.
    forwarded_allow_ips: str = ""
    #: Largest accepted request body for uploads, in bytes.
    max_upload_bytes: int = 50 * 1024 * 1024
    #: Most features accepted in one import or one API geometry payload.
    max_import_features: int = 500_000
    #: Most coordinates in one geometry, sent to the API (cells, redraws) or read from a file,
    #: and in all the geometries of one file or payload.
    max_geometry_coordinates: int = _LIMITS.max_geometry_coordinates
    max_file_coordinates: int = _LIMITS.max_file_coordinates
    #: Zip archives (zipped shapefiles, XLSX): checked from the central directory before any
    #: member is inflated, and again while reading. Sizes in bytes, unzipped.
    max_unzipped_bytes: int = _LIMITS.max_unzipped_bytes
    max_zip_member_bytes: int = _LIMITS.max_zip_member_bytes
    max_zip_ratio: float = _LIMITS.max_zip_ratio
    max_zip_members: int = _LIMITS.max_zip_members
    #: A shapefile's .prj/.cpg, and one XML part (sheet, shared strings) of an XLSX workbook.
    max_sidecar_bytes: int = _LIMITS.max_sidecar_bytes
    max_workbook_part_bytes: int = _LIMITS.max_workbook_part_bytes
    #: Deepest nesting of arrays/objects in an uploaded GeoJSON file or a JSON request body.
    max_json_depth: int = _LIMITS.max_json_depth
    #: Page size used when a list request names none, and the largest one allowed.
    default_page_size: int = 100
    max_page_size: int = 1000
    #: OGC API – Features (/ogc): the largest `limit` a client may ask for (desktop GIS pages
    #: in big steps), and the most rows counted for `numberMatched` — above it the member is
    #: left out, so a page of a city-size collection never counts the whole city.
    ogc_max_limit: int = 10_000
    ogc_count_cap: int = 100_000
    #: Load the generated demo street when the database is empty (development only).
    load_demo: bool = True
    demo_seed: int = 42
    #: The users' time zone (IANA name): which date is "today", where an as-of day ends, how
    #: incident statistics are cut into days and months, how times are printed on maps.
    local_timezone: str = "Asia/Shanghai"

    @field_validator("local_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)"
            ) from exc
        return value

    def input_limits(self) -> InputLimits:
        """The limits above as geodata's InputLimits, for its readers."""
        return InputLimits(**{f.name: getattr(self, f.name) for f in fields(InputLimits)})

    @property
    def is_development(self) -> bool:
        """True outside production (development and test)."""
        return self.environment != "production"


class DatabaseSettings(BaseSettings):
    """PostGIS connection; with no URL gridsvc runs its own embedded cluster under var/pg."""

    model_config = _config("GRIDSVC_")

    database_url: str | None = None
    #: Folder of the embedded cluster (used only when database_url is unset).
    embedded_dir: Path = Field(default_factory=lambda: AppSettings().var_dir / "pg")
    embedded_db_name: str = "gridsvc"
    #: Folder with initdb/pg_ctl/postgres; found automatically when unset.
    pg_bin_dir: Path | None = None
    #: Connections kept open per process. Requests beyond it wait for one rather than open a
    #: short-lived extra connection (a new PostgreSQL backend plans its first PostGIS queries
    #: 20-50x slower while it loads its catalog caches).
    pool_size: int = 20
    #: A pooled connection older than this is replaced at its next checkout (bounds how long a
    #: connection the network silently dropped can linger; closed ones are noticed at checkout).
    pool_recycle_seconds: int = 1800


class AuthSettings(BaseSettings):
    """Sign-in: JWT signing and password policy."""

    model_config = _config()

    secret_key: str = ""
    token_minutes: int = 8 * 60
    #: Longest life of a desktop-client token minted by `gridsvc users token` (QGIS, ogr2ogr,
    #: another department's system: sent as `Authorization: Bearer <token>`). Revoked like any
    #: token: sign-out, a password change or disabling the user ends it.
    desktop_token_max_days: int = 366
    #: Seconds a token's user, scope and token version are remembered in the process (0: check
    #: the database on every request). A token revoked in another process (logout, password
    #: change, disabled or deleted user) is refused at most this long after; in this process
    #: at once.
    principal_cache_seconds: int = Field(default=3, ge=0, le=10)
    #: Sign-in attempts allowed per client address per minute (the API and the web form);
    #: more get 429.
    login_attempts_per_minute: int = 20
    #: Wrong passwords for one user name from one address before it must wait; then the wait
    #: starts at backoff_first_seconds and doubles with each further failure, up to
    #: backoff_max_seconds. A right password from another address is not delayed.
    backoff_free_failures: int = Field(default=3, ge=1)
    backoff_first_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=15 * 60, gt=0)
    #: Origins (scheme://host[:port], comma-separated) the browser may show for this service
    #: besides the request's own, e.g. the public https address behind a reverse proxy.
    #: Cookie-signed writes from any other origin are refused (CSRF).
    public_origins: str = ""
    jwt_algorithm: str = "HS256"
    #: Password for the first admin created at start-up; generated (and printed) when empty.
    admin_password: str = ""

    @property
    def public_origin_list(self) -> list[str]:
        """The configured public origins, without trailing slashes."""
        return [o.strip().rstrip("/") for o in self.public_origins.split(",") if o.strip()]

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> AuthSettings:
        if AppSettings().environment == "production":
            if self.secret_key.strip().lower() in INSECURE_SECRETS or len(self.secret_key) < 32:
                raise ValueError(
                    "GRIDSVC_SECRET_KEY must be set to a random string of 32+ characters "
                    "in production (e.g. `python -c 'import secrets;print(secrets.token_urlsafe(48))'`)"
                )
            if self.admin_password and self.admin_password.lower() in INSECURE_SECRETS | {
                "admin",
                "password",
            }:
                raise ValueError("GRIDSVC_ADMIN_PASSWORD is a default password; choose another")
        return self


class GeoSettings(BaseSettings):
    """Spatial rules: household estimates and balance bands."""

    model_config = _config()

    #: Average floor area of one dwelling, for household estimates (m²).
    dwelling_area_m2: float = 90.0
    #: Levels assumed for a residential building whose level count is unknown.
    default_levels: int = 6
    cell_households_min: int = 200
    cell_households_target: int = 300
    cell_households_max: int = 500
    #: Storey height used when an import derives levels from a height column (m).
    height_per_level_m: float = Field(default=3.0, gt=0)
    #: Two areas of the same level overlapping by more than this are refused on import (m²).
    overlap_tolerance_m2: float = Field(default=1.0, ge=0)
    #: Share of buildings with 0 households (and no known class) above which an import warns
    #: and a proposal refuses: the class was probably read from the wrong column.
    zero_households_max_share: float = Field(default=0.5, gt=0, le=1)
    #: Share of roads without a class above which an import warns and a proposal refuses.
    unclassified_roads_max_share: float = Field(default=0.5, gt=0, le=1)
    #: Gaps and overlaps between cells larger than this are reported by validation (m²).
    coverage_tolerance_m2: float = Field(default=0.01, ge=0)


class MapSettings(BaseSettings):
    """Web maps and exported maps: basemaps, offline assets, report furniture."""

    model_config = _config("GRIDSVC_MAP_")

    #: Basemap shown by default: none (our own buildings and roads; works offline),
    #: tianditu (天地图, needs `tianditu_key`), amap (高德, GCJ-02) or local (`local_tiles_url`).
    basemap: Literal["none", "tianditu", "amap", "local"] = "none"
    tianditu_key: str = ""
    #: URL template of a local tile folder served on the intranet, e.g. /tiles/{z}/{x}/{y}.png.
    local_tiles_url: str = ""
    local_tiles_attribution: str = ""
    #: Line printed under exported maps, e.g. "审图号：GS(2026)1234号" or "内部使用".
    footer: str = "内部使用"
    #: Organisation named in map titles and reports.
    organisation: str = ""
    #: Web maps draw buildings from vector tiles (/api/v1/tiles) instead of inline GeoJSON
    #: when the area has more buildings than this (a whole street draws at any zoom).
    tiled_buildings_above: int = Field(default=3000, ge=0)
    #: How long a browser may reuse a vector tile before revalidating it (seconds; the ETag
    #: then answers 304 when nothing changed).
    tile_max_age_seconds: int = Field(default=60, ge=0, le=86400)


class CoverageSettings(BaseSettings):
    """Coverage figures: walking distance to a volunteer's home, local day boundaries."""

    model_config = _config()

    #: A household is "near a volunteer" when its building lies within this straight-line
    #: distance (metres, on the WGS84 spheroid) of a building where a volunteer lives.
    walk_distance_m: float = Field(default=300.0, gt=0, le=5000)
    #: Days a visit counts as recent (share of households visited in the last N days).
    visit_window_days: int = Field(default=30, ge=1, le=366)


class IncidentSettings(BaseSettings):
    """Incidents: routing distances, duplicates, photos, the local time zone of reports."""

    model_config = _config("GRIDSVC_INCIDENT_")

    #: A point closer than this to its cell's boundary is flagged for confirmation (metres).
    boundary_m: float = 20.0
    #: Same category within this distance and this many days: a possible duplicate.
    duplicate_m: float = 50.0
    duplicate_days: float = 7.0
    #: A point outside every community still reaches the street queue of the nearest community
    #: within this distance (metres); farther away it is refused as outside the area served.
    outside_max_m: float = 2000.0
    #: Largest photo (bytes) and most photos per incident.
    photo_max_bytes: int = 5 * 1024 * 1024
    photos_per_incident: int = 9


class Settings:
    """Every concern's settings, read once."""

    def __init__(self) -> None:
        self.app = AppSettings()
        self.db = DatabaseSettings()
        self.auth = AuthSettings()
        self.geo = GeoSettings()
        self.maps = MapSettings()
        self.coverage = CoverageSettings()
        self.incidents = IncidentSettings()
        self._secrets: dict[str, str] = {}

    def remembered_secret(self, name: str, configured: str = "", nbytes: int = 9) -> str:
        """`configured` if set, else a random secret generated once and kept in var/NAME (600)."""
        if configured:
            return configured
        if name not in self._secrets:
            path = self.app.var_dir / name
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_urlsafe(nbytes))
                path.chmod(0o600)
            self._secrets[name] = path.read_text().strip()
        return self._secrets[name]

    def jwt_secret(self) -> str:
        """The JWT signing key; in development a random one is kept in var/secret_key."""
        return self.remembered_secret("secret_key", self.auth.secret_key, nbytes=48)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache to change them)."""
    return Settings()
