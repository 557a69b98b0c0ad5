"""The one settings object every service starts from (12-factor: env vars and `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Data
    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{REPO_ROOT / 'var' / 'linju.db'}",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    communities_file: Path = REPO_ROOT / "config" / "communities.yaml"

    # Queue
    redis_url: str | None = "redis://127.0.0.1:6379/0"
    broker: Literal["auto", "redis", "rabbitmq", "stub"] = "auto"
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Redis broker: a dead worker's unacknowledged messages come back once its heartbeat is
    # older than this; maintenance (which requeues them) runs on this share of broker commands
    # (per million: 1000 is dramatiq's default of 0.1 %, 1000000 is always).
    broker_heartbeat_timeout_ms: int = 60_000
    broker_maintenance_chance: int = 1000
    # The longest a worker waits between two looks at an empty (or, with every thread busy, a
    # full) queue: dramatiq backs off exponentially up to this (its default is 1000 ms, which puts
    # up to a second on a request arriving after a quiet spell; docs/performance.md).
    queue_poll_max_ms: int = 100
    # `linju deliver` / `linju intake` on SIGTERM: finish the messages in hand for up to this long
    # (docker-compose.yml gives them a longer stop_grace_period before SIGKILL).
    worker_stop_timeout_ms: int = 20_000

    # Telegram
    telegram_bot_token: SecretStr | None = None
    telegram_api_base: str | None = None
    webhook_enabled: bool = False
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 8080

    # Matrix (`linju matrix`; off unless MATRIX_HOMESERVER is set, see docs/matrix.md)
    matrix_homeserver: str | None = None           # e.g. https://matrix.example.org
    matrix_user_id: str | None = None              # the bot account, e.g. @linju:example.org
    matrix_password: SecretStr | None = None       # used to log in when no access token is given
    matrix_access_token: SecretStr | None = None
    # One device for every Linju process: Matrix scopes transaction ids to a device, so a resend
    # from any delivery worker with the same transaction id is recognised as the same message.
    matrix_device_id: str = "LINJUBOT"
    # The bot account's budget on its homeserver (Synapse's rc_message applies per sender).
    matrix_messages_per_second: float = 5.0
    matrix_burst: float = 10.0
    matrix_room_per_second: float = 1.0
    matrix_group_per_minute: float = 30.0

    # Playground (used by `linju run` when no token is set)
    playground_host: str = "127.0.0.1"
    playground_port: int = 8081
    playground_rate_limits: bool = False

    # Staff dashboard (`linju dashboard`): server-rendered pages, login by a one-time code
    # the bot sends to the staff member's chat. The secret signs login codes and CSRF tokens.
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8082
    dashboard_secret: SecretStr | None = None
    dashboard_cookie_secure: bool = False
    dashboard_session_hours: float = 12.0
    dashboard_code_minutes: float = 10.0
    # Open /metrics to anyone who can reach the port (empty), or require this bearer token.
    metrics_token: SecretStr | None = None

    # Open311 GeoReport v2 (served by the dashboard): keys allowed to submit requests.
    open311_api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # People and operations
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    health_port: int = 0

    # Flood control: new requests one person may open per hour.
    max_requests_per_hour: int = 10

    # Scheduler
    scheduler_tick_seconds: float = 5.0
    stuck_request_seconds: float = 30.0

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.replace(";", ",").split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("open311_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("redis_url", "matrix_homeserver", "matrix_user_id", "matrix_password", "matrix_access_token",
                     mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def matrix_enabled(self) -> bool:
        return bool(self.matrix_homeserver and self.matrix_user_id
                    and (self.matrix_password or self.matrix_access_token))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
