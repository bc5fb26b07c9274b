"""Every setting is an environment variable, read and validated once at start."""

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.db_url import normalise_database_url, parse_database_url

# Passwords from examples and defaults, refused when ROADMAP_ENV=production.
# Webhook secrets derive from this key unless ROADMAP_WEBHOOK_SECRET_KEY is set. Production
# refuses to create subscriptions with it: a key known from the source would let a database
# dump forge signatures.
DEVELOPMENT_WEBHOOK_KEY = "roadmap-development-webhook-key"

PLACEHOLDER_PASSWORDS = frozenset(
    {"", "changeme", "change-me", "password", "postgres", "secret", "example", "roadmap"}
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROADMAP_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///roadmap.db",
        validation_alias=AliasChoices("DATABASE_URL", "ROADMAP_DATABASE_URL"),
        description="sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
    )
    env: Literal["development", "production"] = "development"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    db_pool_size: int = Field(default=16, ge=1, le=200)
    # A request queued behind a lock holds its pool connection while it waits, so waits are cut
    # short: the request gets a 503 with Retry-After instead of stalling the pool. The CLI's
    # engines set neither (see db.create_engine): `migrate` waits for the other replicas'
    # start-up lock, and import and migration statements may run long.
    db_lock_timeout_ms: int = Field(
        default=5000,
        ge=1,
        le=600_000,
        description="Longest wait for a lock: PostgreSQL's lock_timeout, SQLite's busy timeout",
    )
    db_statement_timeout_ms: int = Field(
        default=15_000,
        ge=0,
        le=3_600_000,
        description="PostgreSQL's statement_timeout for the service's requests; 0: none",
    )
    migrate_on_start: bool = True
    require_if_match: bool = False
    require_auth_for_reads: bool = False
    require_sources: bool = Field(
        default=True,
        description="Refuse a status change, decision or correction that cites no source",
    )
    cors_origins: str = Field(
        default="", description="Comma-separated origins allowed by CORS; empty: CORS off"
    )
    idempotency_ttl_hours: int = Field(default=24, ge=24, le=24 * 30)
    view_cache_mb: int = Field(
        default=16, ge=0, le=1024, description="Per-worker cache of rendered reads; 0: off"
    )
    stream_buffer_events: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Events a live stream may fall behind before it is cut off (it resumes "
        "with Last-Event-ID)",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow http and private, loopback and link-local webhook targets",
    )
    webhook_secret_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_WEBHOOK_KEY),
        description="The key webhook secrets are derived from (webhooks.signing)",
    )
    webhook_retry_max_seconds: float = Field(default=300, ge=1, le=86_400)
    webhook_failing_after_hours: float = Field(default=24, gt=0, le=24 * 30)
    webhook_delivery_retention_days: int = Field(default=7, ge=1, le=365)
    webhook_dispatch: bool = Field(
        default=True,
        description="Deliver webhooks from the server's workers; false when `roadmap deliver` "
        "runs as a process of its own",
    )
    # The names container platforms set; no ROADMAP_ prefix.
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="PORT")
    web_concurrency: int = Field(default=1, ge=1, le=64, validation_alias="WEB_CONCURRENCY")

    @field_validator("database_url")
    @classmethod
    def _database_url_is_supported(cls, value: str) -> str:
        normalise_database_url(value)  # raises ValueError with a readable message
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production_settings(self) -> "Settings":
        if self.env != "production":
            return self
        if "*" in self.cors_origin_list:
            raise ValueError("ROADMAP_CORS_ORIGINS='*' is refused in production; list the origins")
        password = parse_database_url(self.database_url).password
        if password is not None and password.lower() in PLACEHOLDER_PASSWORDS:
            raise ValueError(
                "DATABASE_URL uses a placeholder password; set a real one in production"
            )
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def webhook_key_is_set(self) -> bool:
        return self.webhook_secret_key.get_secret_value() != DEVELOPMENT_WEBHOOK_KEY


@lru_cache
def get_settings() -> Settings:
    return Settings()
