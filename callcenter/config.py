"""Settings, read from the environment with the CALLCENTER_ prefix (or a .env file)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Locale = Literal["ru", "en"]


class Settings(BaseSettings):
    """Every knob of the product; the defaults are the embedded single-process mode."""

    model_config = SettingsConfigDict(
        env_prefix="CALLCENTER_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    database_url: str = "sqlite+aiosqlite:///./var/callcenter.db"
    redis_url: str = ""
    """Empty: events and jobs stay in this process."""

    ami_host: str = ""
    """Empty: no real PBX; `make demo` starts the built-in simulator."""
    ami_port: int = 5038
    ami_username: str = ""
    ami_secret: SecretStr = SecretStr("")
    ami_ping_interval_s: float = 5.0
    ami_dead_after_s: float = 15.0
    pbx_name: str = "default"

    default_region: str = "RU"
    default_area_code: str = "495"
    company_numbers: list[str] = Field(default_factory=list)
    """The company's own numbers (DIDs, trunks): calls from them never create clients."""
    auto_create_clients: bool = False

    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8000", "http://localhost:8000"]
    )
    locale: Locale = "ru"

    session_ttl_hours: int = 12
    cookie_secure: bool = False
    """Set true behind HTTPS; the demo runs on plain http://127.0.0.1."""
    login_attempts_per_minute: int = 10
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    """Password hashing cost; lower only for test suites (hashes carry their own parameters)."""

    realtime_replay_size: int = 1000
    """How many events per user stream are kept for resume after a reconnect."""
    ws_heartbeat_s: float = 15.0

    host: str = "127.0.0.1"
    port: int = 8000


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own Settings instead)."""
    return Settings()
