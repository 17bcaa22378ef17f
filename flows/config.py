"""feeds.yaml: the feeds to watch, topic keywords and settings overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, HttpUrl, ValidationError, field_validator

from flows.settings import Settings
from storage.feed_state import FeedConfig


class FeedSpec(BaseModel):
    url: HttpUrl
    name: str | None = None
    tags: list[str] = Field(default_factory=list)
    poll_interval_minutes: float = Field(default=15, gt=0)
    keywords: list[str] = Field(default_factory=list)


class FeedsFile(BaseModel):
    feeds: list[FeedSpec]
    keywords: list[str] = Field(default_factory=list)
    settings: dict = Field(default_factory=dict)

    @field_validator("feeds")
    @classmethod
    def _unique(cls, feeds: list[FeedSpec]) -> list[FeedSpec]:
        urls = [str(f.url) for f in feeds]
        duplicates = sorted({u for u in urls if urls.count(u) > 1})
        if duplicates:
            raise ValueError(f"feed listed twice: {', '.join(duplicates)}")
        return feeds


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class FeedsConfig:
    feeds: list[FeedConfig]
    keywords: list[str]
    settings: dict


def load_feeds_file(path: Path) -> FeedsConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"feeds file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    try:
        parsed = FeedsFile.model_validate(raw or {})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    feeds = [
        FeedConfig(
            url=str(f.url),
            name=f.name,
            tags=tuple(f.tags),
            poll_interval_s=int(f.poll_interval_minutes * 60),
            keywords=tuple(f.keywords),
        )
        for f in parsed.feeds
    ]
    keywords = list(parsed.keywords) + [k for f in parsed.feeds for k in f.keywords]
    return FeedsConfig(feeds=feeds, keywords=keywords, settings=parsed.settings)


def effective_settings(feeds_file: Path | None = None, **overrides) -> tuple[Settings, FeedsConfig]:
    """Settings from defaults, the feeds file's ``settings:``, the environment, then ``overrides``."""
    base = Settings()
    path = Path(feeds_file) if feeds_file else base.feeds_file
    config = load_feeds_file(path)
    merged = {
        **config.settings,
        **{k: v for k, v in base.model_dump(exclude_unset=True).items()},
        **{k: v for k, v in overrides.items() if v is not None},
    }
    merged["feeds_file"] = path
    merged.setdefault("keywords", config.keywords)
    return Settings(**merged), config
