"""Configuration from the environment (design.md §4): every variable optional."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    libingest_data_dir: Path = Path("./.data")
    libingest_env: Literal["development", "production"] = "development"
    # auto: readable, coloured lines on a terminal, JSON lines otherwise (logging.py).
    libingest_log_format: Literal["auto", "json", "console"] = "auto"
    libingest_log_level: str = "INFO"

    database_url: str | None = None
    database_pool_size: int = 10

    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_collection: str = "tracks"
    # The dense half of the hybrid search (ADR 0030): the WordLlama model bundled in its wheel,
    # or the hashing embedder (ADR 0011). Changing it rewrites the index's points at start.
    embedder: Literal["wordllama", "hashing"] = "wordllama"
    embedding_dimension: int = 256

    tidal_client_id: str | None = None
    tidal_client_secret: str | None = None
    tidal_api_base_url: str = "https://openapi.tidal.com/v2"
    tidal_auth_url: str = "https://auth.tidal.com/v1/oauth2/token"
    tidal_country_code: str = "US"
    tidal_requests_per_second: float = 0.2
    tidal_burst: int = 2
    catalog_cache_max_age_days: float = 7.0
    # How long an id TIDAL does not know is remembered as unknown (ADR 0028); 0: not at all.
    catalog_unknown_max_age_hours: float = Field(default=24.0, ge=0)

    inngest_event_key: str | None = None
    inngest_signing_key: str | None = None
    inngest_dev: str | None = None
    inngest_base_url: str | None = None
    inngest_event_api_base_url: str | None = None
    # Where Inngest reaches this service (scheme://host[:port]) and the path it calls: what a sync
    # registers, never the request's Host header; cloud mode refuses to sync without an origin.
    inngest_serve_origin: str | None = None
    inngest_serve_path: str = "/api/inngest"
    # Steps of `ingest-track` running at once, across every process (ADR 0019).
    inngest_function_concurrency: int = Field(default=10, ge=1)

    auth_jwt_secret: str | None = Field(default=None, repr=False)
    auth_jwt_issuer: str | None = None
    auth_jwt_audience: str | None = None

    relay_enabled: bool = True
    relay_concurrency: int = 4
    # The most track jobs one claim takes and schedules together (ADR 0017).
    relay_batch_size: int = Field(default=50, ge=1)
    relay_sweep_seconds: float = 1.0
    local_queue_concurrency: int = 4

    graphql_max_depth: int = 10
    graphql_max_aliases: int = 30
    # A document past it is refused while parsing. 300 holds the largest legitimate document,
    # graphql-core's full introspection query (191 tokens), and keeps the worst one near it
    # (bench/validation_cost.py, ADR 0020).
    graphql_max_tokens: int = 300
    # A request body past it answers 413. The parser's cost is linear in the text: a 60 KB
    # string literal took 15-17 ms to parse, a 16 KB one 4 ms (bench/validation_cost.py), and
    # this API's documents are a few hundred bytes, its variables ids.
    graphql_max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    # Selections (fields, fragments) in a document once its fragments are expanded (ADR 0020).
    graphql_max_selections: int = Field(default=1000, ge=1)
    # graphql-core's work budget for checking that fields sharing a name can merge (ADR 0020).
    graphql_field_merge_budget: int = Field(default=1000, ge=1)
    # Progress subscriptions (ADR 0031): on one WebSocket, and per user in one API process.
    graphql_max_subscriptions_per_connection: int = Field(default=10, ge=1)
    graphql_max_subscriptions_per_user: int = Field(default=20, ge=1)

    # Per-user quotas on adds (ADR 0022): a token bucket in each API process's memory, and a cap
    # on the user's items still waiting to be scheduled (each costs catalogue calls).
    add_rate_per_second: float = Field(default=10.0, gt=0)
    add_burst: int = Field(default=100, ge=1)
    add_max_pending_per_user: int = Field(default=1000, ge=0)  # 0: no cap
    # The request line and headers together: a JWT is under 4 KiB (ADR 0022).
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # /metrics: on a port of its own, or behind this bearer token, or (neither set) only in
    # development (ADR 0022).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_token: str | None = Field(default=None, repr=False)

    @field_validator("inngest_serve_origin")
    @classmethod
    def _an_origin(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"INNGEST_SERVE_ORIGIN must be http(s)://host[:port]: {value!r}")
        if parts.path not in {"", "/"} or parts.query or parts.fragment:
            # The SDK would drop them silently; the path belongs in INNGEST_SERVE_PATH.
            raise ValueError(f"INNGEST_SERVE_ORIGIN must be an origin, without a path: {value!r}")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("inngest_serve_path")
    @classmethod
    def _an_absolute_path(cls, value: str) -> str:
        if not value.startswith("/") or "?" in value or "#" in value:
            raise ValueError(f"INNGEST_SERVE_PATH must be an absolute path: {value!r}")
        return value

    @property
    def is_production(self) -> bool:
        return self.libingest_env == "production"

    @property
    def uses_inngest(self) -> bool:
        """Inngest when an event key is set or the SDK's dev mode is switched on."""
        return bool(self.inngest_event_key) or _truthy(self.inngest_dev)

    @property
    def uses_tidal(self) -> bool:
        return bool(self.tidal_client_id and self.tidal_client_secret)


def _truthy(value: str | None) -> bool:
    # INNGEST_DEV may be "1", "true", or a Dev Server URL; the SDK treats any of them as dev mode.
    return value is not None and value.strip().lower() not in {"", "0", "false", "no", "off"}
