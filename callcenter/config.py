"""Settings, read from the environment with the CALLCENTER_ prefix (or a .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from callcenter.calls.wrong_number import WrongNumberRule

Locale = Literal["ru", "en"]


class PbxSite(BaseModel):
    """One PBX (a site): its AMI, and how local numbers of its callers are read."""

    name: str = Field(pattern=r"^[\w.-]{1,64}$")
    """Calls are keyed by this name and the call's Linkedid."""
    ami_host: str = ""
    """Empty: no real PBX; the embedded mode runs a simulator for it."""
    ami_port: int = 5038
    ami_username: str = ""
    ami_secret: SecretStr = SecretStr("")
    region: str | None = None
    """Empty: `default_region`."""
    area_code: str | None = None
    """Empty: `default_area_code`."""


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
    pbxs: list[PbxSite] = Field(default_factory=list)
    """More PBXs (sites), each with its own adapter, as JSON: `CALLCENTER_PBXS='[{"name":
    "spb", "ami_host": "10.1.0.5", "ami_username": "crm", "ami_secret": "...", "area_code":
    "812"}]'`. The `ami_*` settings above stay the PBX named `pbx_name`."""
    pbx_lease_ttl_s: float = Field(default=6.0, gt=0, le=8.0)
    """With `redis_url`: an adapter holds its PBX's lease this long past its last renewal
    (renewed every third of it); a standby adapter takes over within this plus 1 s."""
    webhook_pbxs: list[str] = Field(default_factory=list)
    """PBX names that may post call events to `POST /api/pbx/{pbx}/events` (docs/webhook.md);
    any other name gets 404. Empty: the webhook accepts nothing."""
    webhook_max_events: int = Field(default=100, ge=1, le=1000)
    """The most events one webhook request may carry."""
    webhook_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    webhook_requests_per_minute: int = Field(default=600, ge=1)
    """Per API token and PBX, in any sliding minute (per API process); more get 429."""

    default_region: str = "RU"
    default_area_code: str = "495"
    company_numbers: list[str] = Field(default_factory=list)
    """The company's own numbers (DIDs, trunks): calls from them never create clients."""
    auto_create_clients: bool = False
    early_pops: bool = False
    """Pop a ring as it is read, before the batch that records it commits (PostgreSQL;
    `callcenter/calls/early_pops.py`). Faster pops on a busy adapter, at the price of the
    rule that browsers hear only of committed records: a pop whose batch is dropped (the
    adapter lost its PBX lease or died before the commit) names a call id that is never
    stored."""

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

    agent_interface_template: str = Field(default="Local/{ext}@agents", pattern=r"\{ext\}")
    """A user's extension as a queue member interface (QueuePause, QueueAdd, QueueRemove)."""
    agent_channel_template: str = Field(default="Local/{ext}@agents", pattern=r"\{ext\}")
    """The channel that rings a user's phone (`PJSIP/{ext}` on most PBXs): click-to-call and
    listen/whisper/barge ring it first, and ChanSpy looks for `<it>-*` channels."""
    dialout_context: str = Field(default="from-internal", pattern=r"^[\w.-]{1,80}$")
    """The dialplan context in which a click-to-call dials the client's number."""
    originate_ring_timeout_s: float = Field(default=30.0, gt=0, le=300)
    pause_reasons: list[str] = Field(
        default_factory=lambda: ["lunch", "break", "training", "meeting", "other"]
    )
    """Pause reason codes offered to agents (the UI labels known codes in ru/en)."""
    pause_reason_max_length: int = Field(default=64, ge=1, le=255)
    """Longest free-text pause reason ("other: ...")."""
    dial_dedupe_s: float = Field(default=10.0, ge=0)
    """A second click-to-call to the same number by the same user within this is not dialled."""
    worklist_days: int = Field(default=2, ge=1, le=31)
    """Missed calls of this many calendar days (today included) make the call-back worklist."""
    timezone: str = "Europe/Moscow"
    """The call centre's local time: where "today" starts."""
    short_abandon_s: float = Field(default=5.0, ge=0, le=600)
    """Callers who hang up in a queue in under this many seconds are short calls: they leave
    the service level and abandon rate (see `callcenter.kpi`)."""
    default_service_level_s: int = Field(default=20, ge=1, le=3600)
    """Service-level T of a queue whose supervisors and PBX set none."""
    queues_publish_interval_s: float = Field(default=0.01, ge=0)
    """A changed queue's view goes to supervisors with the ingest batch that changed it, but
    at most once per this interval per queue (a change inside it is sent at its end, so the
    last state is always sent): a bound for bursts of tiny batches, not a delay."""
    queues_refresh_s: float = Field(default=15.0, gt=0)
    """How often the live board re-reads outcomes (wrong numbers) and queue settings."""
    report_wrap_up_cap_s: float = Field(default=300.0, ge=0, le=86400)
    """Wrap-up (outcome set − call end) counts at most this long per call in reports."""
    report_required_fields: dict[str, list[Literal["notes", "client"]]] = Field(
        default={"call_back": ["notes"], "complaint": ["notes"], "sale": ["client"]}
    )
    """Per outcome, what a call must also have to count as complete (agent completeness)."""

    # Background jobs: Celery on `redis_url`, or asyncio tasks in this process without it.
    jobs_max_attempts: int = Field(default=5, ge=1, le=50)
    """Attempts of a job (first run, retries, redeliveries) before it becomes a dead letter."""
    jobs_retry_backoff_s: float = Field(default=2.0, gt=0)
    """Retry n waits a random time up to `backoff * 2**(n-1)` s (full jitter)..."""
    jobs_retry_backoff_max_s: float = Field(default=300.0, gt=0)
    """...and never longer than this."""
    jobs_time_limit_s: float = Field(default=60.0, gt=0)
    """Time limit of one attempt of a short job (the wrong-number rules, the sweep)."""
    jobs_long_time_limit_s: float = Field(default=600.0, gt=0)
    """Time limit of one attempt of a long job (recording analysis)."""
    jobs_visibility_timeout_s: int = Field(default=3600, ge=1)
    """A job taken by a worker that died unacknowledged is delivered again after this; it
    must exceed the longest time limit and the longest retry wait (checked at start)."""
    jobs_unacked_restore_interval_s: int = Field(default=10, ge=1)
    """How often a worker looks for such jobs."""
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    """A Celery worker serves Prometheus metrics on 127.0.0.1 at this port (0: none)."""
    jobs_key_prefix: str = Field(default="", pattern=r"^[\w:.-]*$")
    """Put before every Redis key of the job queue: several deployments on one Redis."""
    jobs_sweep_interval_s: float = Field(default=60.0, gt=0)
    """How often the sweep sends the jobs of ended calls whose jobs never ran (a lost send)."""
    jobs_sweep_after_s: float = Field(default=120.0, ge=0)
    """The sweep leaves calls that ended less than this ago to their own jobs."""
    jobs_sweep_lookback_h: float = Field(default=24.0, gt=0)
    jobs_test_pause_s: float = Field(default=0.0, ge=0)
    """Tests only: every job pauses this long at `jobs_test_pause_at` (to kill its worker)."""
    jobs_test_pause_at: Literal["before_commit", "after_commit"] = "before_commit"

    # Wrong numbers closed automatically (`callcenter.calls.wrong_number`).
    wrong_number_rules: list[WrongNumberRule] = Field(default_factory=lambda: list(WrongNumberRule))
    """The rules that may close a call, in order; `[]` turns the auto-close off."""
    wrong_number_short_answer_s: float = Field(default=5.0, ge=0)
    """Answered, shorter than this and no notes: a wrong number."""
    wrong_number_caller_hangup_s: float = Field(default=3.0, ge=0)
    """The caller hung up at most this long after the answer: a wrong number."""
    wrong_number_min_caller_speech_s: float = Field(default=0.5, ge=0)
    """Less caller speech than this in the analysed recording: a wrong number."""
    wrong_number_known_max_talk_s: float = Field(default=60.0, ge=0)
    """A number marked a wrong number before closes its next calls up to this talk time."""
    wrong_number_known_lookback_days: int = Field(default=90, ge=1)
    wrong_number_patterns: list[str] = Field(default_factory=list)
    """Numbers (any format) or `re:<regular expression>` (searched in the E.164 form and as
    dialled) whose calls are wrong numbers, e.g. `["+74950000000", "re:^\\+7800"]`."""

    host: str = "127.0.0.1"
    port: int = 8000

    # Call recordings (`callcenter.recordings`).
    recordings_dir: Path = Path("var/recordings")
    """Where MixMonitor's files are (a call stores the name relative to this folder)."""
    recording_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    """Larger files are not analysed (stored as `too_large`)."""
    recording_max_seconds: float = Field(default=4 * 3600.0, gt=0)
    """Longer recordings are not analysed (stored as `too_long`)."""
    recording_vad_mode: int = Field(default=2, ge=0, le=3)
    """WebRTC detector mode: 0 takes the most for speech, 3 the least."""
    recording_stereo_left: Literal["caller", "agent"] = "caller"
    """Who is on the left channel of stereo files (MixMonitor's `D` option: the channel's
    own audio, i.e. the caller when recording on the inbound channel)."""
    transcriber: str = ""
    """Optional speech-to-text plugin: an entry point name in `callcenter.transcribers` or
    `package.module:factory`. Empty: no transcripts. Nothing is ever downloaded."""

    data_dir: Path = Path("var")
    """Where uploaded files (imports) and their reports are kept."""
    import_max_upload_bytes: int = 64 * 1024 * 1024
    """An upload larger than this is refused while it streams in, before any parsing."""
    import_max_unzipped_bytes: int = 512 * 1024 * 1024
    """Sum of the uncompressed sizes of an .xlsx's parts (declared and really read)."""
    import_max_rows: int = 500_000
    import_keep_files_days: float = Field(default=30.0, gt=0)
    """An import's files (rejected rows) are deleted this long after it finished; the upload
    itself as soon as the import is done, failed or undone; a file never imported this long
    after its upload (its batch becomes failed, `expired`)."""

    operators_edit_personal_data: bool = False
    """Let operators change clients' personal data; by default they only add events to cards."""
    export_min_role: Literal["operator", "supervisor", "admin"] = "supervisor"
    """The lowest role that may export a segment as a mailing list."""
    reminders_interval_s: float = Field(default=30.0, ge=0)
    """How often the API process sends due task/meeting reminders; 0 when a worker does."""

    @field_validator("pbxs")
    @classmethod
    def _unique_pbx_names(cls, sites: list[PbxSite]) -> list[PbxSite]:
        names = [site.name for site in sites]
        if len(names) != len(set(names)):
            raise ValueError(f"PBX names must be unique: {names}")
        return sites

    def pbx_sites(self) -> list[PbxSite]:
        """Every PBX: the single-PBX settings (as `pbx_name`, unless `pbxs` has that name, or
        `pbxs` alone is set), then `pbxs`; region and area code filled in from the defaults."""
        sites = [
            site.model_copy(
                update={
                    "region": site.region or self.default_region,
                    "area_code": site.area_code or self.default_area_code,
                }
            )
            for site in self.pbxs
        ]
        if all(site.name != self.pbx_name for site in sites) and (self.ami_host or not sites):
            default = PbxSite(
                name=self.pbx_name,
                ami_host=self.ami_host,
                ami_port=self.ami_port,
                ami_username=self.ami_username,
                ami_secret=self.ami_secret,
                region=self.default_region,
                area_code=self.default_area_code,
            )
            sites.insert(0, default)
        return sites


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own Settings instead)."""
    return Settings()
