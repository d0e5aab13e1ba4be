"""Configuration from the environment (design.md §4): every variable optional."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    libingest_data_dir: Path = Path("./.data")
    libingest_env: Literal["development", "production"] = "development"
    libingest_log_format: Literal["json", "console"] = "json"
    libingest_log_level: str = "INFO"

    database_url: str | None = None
    database_pool_size: int = 10

    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_collection: str = "tracks"
    embedding_dimension: int = 256

    tidal_client_id: str | None = None
    tidal_client_secret: str | None = None
    tidal_api_base_url: str = "https://openapi.tidal.com/v2"
    tidal_auth_url: str = "https://auth.tidal.com/v1/oauth2/token"
    tidal_country_code: str = "US"
    tidal_requests_per_second: float = 0.2
    tidal_burst: int = 2
    catalog_cache_max_age_days: float = 7.0

    inngest_event_key: str | None = None
    inngest_signing_key: str | None = None
    inngest_dev: str | None = None
    inngest_base_url: str | None = None
    inngest_event_api_base_url: str | None = None

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
    graphql_max_tokens: int = 2000
    graphql_max_body_bytes: int = 64 * 1024

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
