"""Process settings, read from MIDBOT_* environment variables and an optional .env file."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "load_settings"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class SettingsError(Exception):
    """A setting is invalid; the message names the environment variable."""


# The simulator's token: public, so it may sign only loopback traffic (`serve` refuses it elsewhere).
DEFAULT_AUTH_TOKEN = "midbot-simulator-token"


class Settings(BaseSettings):
    """Every knob of the midbot process. One line of README per field."""

    model_config = SettingsConfigDict(
        env_prefix="MIDBOT_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./var/midbot.db"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8080"
    log_level: LogLevel = "INFO"
    log_format: Literal["json", "text", "auto"] = "auto"

    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: SecretStr = SecretStr(DEFAULT_AUTH_TOKEN)
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_timeout_seconds: float = Field(10.0, gt=0, le=120)
    twilio_max_retries: int = Field(4, ge=0, le=10)
    # Transient provider failures in a row that open the circuit, and its first cool-down (doubling to 5 min).
    twilio_breaker_threshold: int = Field(5, ge=1, le=1000)
    twilio_breaker_cooldown_seconds: float = Field(10.0, gt=0, le=600)
    twilio_validate_signatures: bool = True
    # Twilio's Advanced Opt-Out answers STOP/START itself; midbot then skips its own START confirmation.
    twilio_advanced_opt_out: bool = True

    session_secret: SecretStr = SecretStr("")
    session_max_age_minutes: int = Field(480, ge=5, le=7 * 24 * 60)
    secure_cookies: bool = False

    dispatch_interval_seconds: float = Field(5.0, gt=0, le=3600)
    dispatch_batch_size: int = Field(100, ge=1, le=10000)
    dispatch_concurrency: int = Field(16, ge=1, le=256)
    dispatch_lease_seconds: int = Field(120, ge=10, le=3600)
    run_dispatcher: bool = True
    # Every periodic job's interval, when set (tests and demos); otherwise each job's own (bot.jobs.JOBS).
    job_interval_seconds: float | None = Field(None, gt=0, le=3600)
    instance_name: str = ""

    # A reply the provider could not take is retried until this many minutes after it was written.
    reply_deadline_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    oncall_webhook_url: str = ""
    signal_webhook_url: str = ""
    signal_webhook_secret: SecretStr = SecretStr("")
    fhir_base_url: str = ""
    max_template_segments: int = Field(3, ge=1, le=10)
    # What one SMS segment costs the clinic (US dollars), for the cost a program preview shows; a default
    # near a US long code's outbound price before carrier fees, to be set to the clinic's own rate.
    segment_price_usd: float = Field(0.0083, ge=0, le=1)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator(
        "public_base_url", "twilio_api_base_url", "oncall_webhook_url", "signal_webhook_url", "fhir_base_url"
    )
    @classmethod
    def _http_url(cls, value: str, info: object) -> str:
        if value == "" and getattr(info, "field_name", "") not in ("public_base_url", "twilio_api_base_url"):
            return value
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def uses_default_token_off_loopback(self) -> bool:
        """True when the built-in (public) simulator token would sign real webhooks: the API is not loopback."""
        host = (urlsplit(self.twilio_api_base_url).hostname or "").lower()
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        return self.twilio_auth_token.get_secret_value() == DEFAULT_AUTH_TOKEN and not loopback

    @property
    def is_sqlite(self) -> bool:
        """True when the store is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning a validation error into one line naming the variable.

    Raises:
        SettingsError: with a message such as ``MIDBOT_PORT: Input should be a valid integer``.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            problems.append(f"MIDBOT_{field.upper()}: {err['msg']}")
        raise SettingsError("; ".join(problems)) from None
