"""The ``reprocess`` flow: re-run claim extraction on stored text when the extractor improves."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from sqlalchemy import or_, select

from extractors.claims import EXTRACTOR_VERSION
from extractors.pipeline import claims_per_text
from flows.runtime import engine_for, recorded_run
from flows.settings import Settings
from flows.stages import claim_extractor
from storage.models import ArticleRow
from storage.runs import RunStats
from storage.writes import replace_claims


def stale_article_ids(
    engine, *, since: datetime | None, origin: str | None, everything: bool, relevance_threshold: float
) -> list[int]:
    """Articles whose claims came from another extractor version (or, with ``everything``, all
    relevant originals). Duplicates never carry claims of their own."""
    query = select(ArticleRow.id).where(ArticleRow.duplicate_of.is_(None))
    if everything:
        query = query.where(
            or_(
                ArticleRow.origin == "seed",
                ArticleRow.relevance >= relevance_threshold,
                ArticleRow.claims_version.is_not(None),
            )
        )
    else:
        query = query.where(ArticleRow.claims_version.is_not(None), ArticleRow.claims_version != EXTRACTOR_VERSION)
    if since is not None:
        query = query.where(or_(ArticleRow.published_at >= since, ArticleRow.fetched_at >= since))
    if origin:
        query = query.where(ArticleRow.origin == origin)
    with engine.connect() as conn:
        return list(conn.execute(query.order_by(ArticleRow.id)).scalars())


@task(name="reprocess-batch")
def reprocess_batch(settings_json: str, article_ids: list[int]) -> RunStats:
    settings = Settings.model_validate_json(settings_json)
    engine = engine_for(settings)
    stats = RunStats()
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(ArticleRow.id, ArticleRow.text).where(ArticleRow.id.in_(article_ids))).all()
        extractor = claim_extractor()
        for (article_id, _), claims in zip(rows, claims_per_text(extractor, [r.text for r in rows]), strict=True):
            if isinstance(claims, Exception):  # left stale: the next reprocess tries it again
                get_run_logger().warning(
                    "article %d not reprocessed: %s: %s", article_id, type(claims).__name__, claims
                )
                stats.articles_failed += 1
                continue
            with engine.begin() as conn:  # one transaction per article: never half an article
                stats.claims_new += replace_claims(conn, article_id, claims, extractor.version)
            stats.extra["articles_reprocessed"] = stats.extra.get("articles_reprocessed", 0) + 1
        return stats
    finally:
        engine.dispose()


@flow(name="reprocess", log_prints=True)
def reprocess_flow(
    since: str | None = None,
    origin: str | None = None,
    everything: bool = False,
    db: str | None = None,
    batch_size: int = 50,
) -> dict:
    settings = Settings(**({"db": db} if db else {}))
    engine = engine_for(settings)
    try:
        with recorded_run(engine, "reprocess") as (run_id, stats):
            since_at = datetime.fromisoformat(since).replace(tzinfo=UTC) if since else None
            ids = stale_article_ids(
                engine,
                since=since_at,
                origin=origin,
                everything=everything,
                relevance_threshold=settings.relevance_threshold,
            )
            # Batches run one after another: the NLP model is the bottleneck and holds one core.
            for i in range(0, len(ids), batch_size):
                stats.add(reprocess_batch(settings.model_dump_json(), ids[i : i + batch_size]))
            stats.extra.setdefault("articles_reprocessed", 0)
            stats.extra["extractor_version"] = EXTRACTOR_VERSION
        return {"status": "completed", "run_id": run_id, "claims_new": stats.claims_new, **stats.extra}
    finally:
        engine.dispose()
