"""Portico's settings: every one is read from a `PORTICO_*` environment variable.

Each field is documented in docs/configuration.md; tests/test_docs.py fails when one is not.
"""

from __future__ import annotations

import ipaddress
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

import limits
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from portico.kit.net import Network, parse_hosts, parse_networks


class SettingsError(Exception):
    """A setting has a bad value; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTICO_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str = ""
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:8000"
    max_private_links: int = Field(default=50, ge=1, le=10_000)
    log_level: str = "info"
    access_log: bool = False
    open_signup: bool = False
    session_days: int = Field(default=14, ge=1, le=365)
    db_pool_size: int = Field(default=14, ge=1, le=1_000)
    db_max_overflow: int = Field(default=0, ge=0, le=1_000)
    db_pool_timeout: float = Field(default=3, gt=0, le=60)
    request_timeout: float = Field(default=30, gt=0, le=600)
    max_connections: int = Field(default=4096, ge=1, le=1_000_000)
    startup_wait: float = Field(default=15, ge=0, le=600)
    reply_timeout: float = Field(default=120, ge=1, le=3600)
    send_timeout: float = Field(default=30, ge=1, le=600)
    # Rate limits, in the `limits` package's syntax ("30/minute", "20 per 10 minutes"): access/ratelimit.py.
    rate_session_starts: str = "30/minute"
    rate_lookups: str = "120/minute"
    rate_messages: str = "20/minute"
    rate_failed_secrets: str = "20/10minutes"
    rate_assistant_starts: str = "600/minute"
    redis_url: str = ""
    trusted_proxies: str = ""
    engine_allowed_hosts: str = ""
    # Documents (documents/): limits per file and per assistant, the conversion pool, and whether
    # the uploaded file itself is kept (for its owner to download again; never served to guests).
    document_max_bytes: int = Field(default=20_000_000, ge=1, le=1_000_000_000)
    document_max_pages: int = Field(default=500, ge=1, le=100_000)
    documents_per_assistant: int = Field(default=100, ge=1, le=10_000)
    document_chars_per_assistant: int = Field(default=10_000_000, ge=1, le=1_000_000_000)
    document_timeout: float = Field(default=60, gt=0, le=3600)
    document_workers: int = Field(default=2, ge=1, le=64)
    document_keep_originals: bool = False
    # Voice (issue 23): one utterance's limits, and the speech pool's threads and waiting places.
    voice_max_seconds: int = Field(default=60, ge=1, le=3_600)
    voice_max_bytes: int = Field(default=2_000_000, ge=1_000, le=100_000_000)
    voice_workers: int = Field(default=1, ge=1, le=64)
    voice_queue: int = Field(default=4, ge=0, le=1_000)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("use sqlite:///path or postgresql://user@host:port/db")
        return value

    @field_validator("base_url")
    @classmethod
    def _absolute_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("must be at least 32 characters; leave it unset to have one generated")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()

    def pool_options(self) -> dict[str, object]:
        """PostgreSQL's connection pool (SQLite's connections are not pooled this way)."""
        if not self.resolved_database_url.startswith(("postgresql://", "postgres://")):
            return {}
        return {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout,
        }

    @field_validator(
        "rate_session_starts", "rate_lookups", "rate_messages", "rate_failed_secrets", "rate_assistant_starts"
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parsed = limits.parse_many(value)
        except ValueError:
            parsed = []
        if len(parsed) != 1 or parsed[0].amount < 1:
            raise ValueError(f"{value!r} is not one rate limit; write it like 30/minute or 20/10minutes")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://")):
            raise ValueError("use redis://host:port/db (or rediss:// for TLS)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an address or a network (like 10.0.0.0/8)") from None
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'portico.db'}"

    @property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def engine_hosts(self) -> frozenset[str]:
        """The only hosts engines may reach; empty means any (but link-local and metadata addresses)."""
        return parse_hosts(self.engine_allowed_hosts)

    def resolved_secret_key(self) -> str:
        """The configured secret, or the one generated into the data folder on first run."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            # Only Portico's own user may read what the data folder holds (the key, the database).
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = "PORTICO_" + str(error["loc"][0]).upper() if error["loc"] else "PORTICO_*"
            lines.append(f"{name}: {error['msg']}")
        raise SettingsError("; ".join(lines)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
