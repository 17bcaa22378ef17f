"""Settings: defaults here, overridden by ``settings:`` in feeds.yaml, then CLAIMWIRE_* variables,
then command-line options."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_FEEDS_FILE = Path(__file__).resolve().parents[1] / "feeds.yaml"
USER_AGENT = "claimwire/0.1 (news claim research pipeline; polite crawler; contact: see project README)"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLAIMWIRE_", extra="ignore")

    db: str | None = None
    feeds_file: Path = DEFAULT_FEEDS_FILE
    allow_private_networks: bool = False
    user_agent: str = USER_AGENT
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0
    total_timeout_s: float = 60.0
    max_redirects: int = 5
    max_body_bytes: int = 10 * 1024 * 1024
    max_feed_bytes: int = 20 * 1024 * 1024
    per_host_concurrency: int = 2
    per_host_delay_s: float = 0.5
    total_concurrency: int = 16
    http_retries: int = 2
    http_retry_backoff_s: float = 0.5
    max_retry_after_s: float = 30.0  # longer Retry-After: record and retry in a later run
    max_initial_items: int = 50
    relevance_threshold: float = 0.2
    keywords: list[str] = Field(default_factory=list)
    batch_size: int = 50
    feed_batch_size: int = 200
    task_runner: Literal["thread", "process", "dask"] = "thread"
    workers: int = 1
    # A worker drains at most this many articles per task run, then hands over to a new task run; the
    # process runner starts each task run in a fresh process, so what a process accumulates lasts one
    # round, however long the backfill (flows/process_runner.py). 0: one task run per worker for the queue.
    # The thread runner ignores it: its workers share the flow's process (flows/ingest.batches_per_round).
    round_articles: int = Field(default=500, ge=0)
    dask_address: str | None = None  # an existing Dask scheduler (tcp://host:8786) for task_runner 'dask'
    overlap: Literal["skip", "wait", "parallel"] = "skip"
    max_attempts: int = 6
    extract_claims: bool = True
