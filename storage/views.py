"""Public views: the contract dashboards rely on. Their columns are documented in the README.

Each view is plain SQL that runs unchanged on SQLite and PostgreSQL. Migrations create them by
name from here (``VIEWS``) so a later migration can recreate a view with the same definition.
"""

from __future__ import annotations

V_ARTICLES = """
CREATE VIEW v_articles AS
SELECT a.id AS article_id, a.url, a.canonical_url, a.origin, f.url AS feed_url,
       COALESCE(a.outlet, f.name) AS outlet, a.title, a.published_at, a.fetched_at,
       a.language, a.word_count, a.duplicate_of
FROM articles a LEFT JOIN feeds f ON f.id = a.feed_id
"""

V_CLAIMS = """
CREATE VIEW v_claims AS
SELECT c.id AS claim_id, c.article_id, a.url, a.published_at, c.text, c.claimant, c.cue,
       c.verification, c.start_char, c.end_char, c.extractor_version
FROM claims c JOIN articles a ON a.id = c.article_id
"""

V_QUANTITIES = """
CREATE VIEW v_quantities AS
SELECT q.claim_id, c.article_id, a.published_at, c.claimant, q.value, q.unit, q.counted, q.text
FROM claim_quantities q JOIN claims c ON c.id = q.claim_id JOIN articles a ON a.id = c.article_id
"""

V_RUNS = """
CREATE VIEW v_runs AS
SELECT id AS run_id, kind, started_at, finished_at, status, feeds_polled, articles_new,
       articles_failed, claims_new, heartbeat_at
FROM runs
"""

VIEWS: dict[str, str] = {
    "v_articles": V_ARTICLES,
    "v_claims": V_CLAIMS,
    "v_quantities": V_QUANTITIES,
    "v_runs": V_RUNS,
}

VIEW_COLUMNS: dict[str, list[str]] = {
    "v_articles": [
        "article_id",
        "url",
        "canonical_url",
        "origin",
        "feed_url",
        "outlet",
        "title",
        "published_at",
        "fetched_at",
        "language",
        "word_count",
        "duplicate_of",
    ],
    "v_claims": [
        "claim_id",
        "article_id",
        "url",
        "published_at",
        "text",
        "claimant",
        "cue",
        "verification",
        "start_char",
        "end_char",
        "extractor_version",
    ],
    "v_quantities": ["claim_id", "article_id", "published_at", "claimant", "value", "unit", "counted", "text"],
    "v_runs": [
        "run_id",
        "kind",
        "started_at",
        "finished_at",
        "status",
        "feeds_polled",
        "articles_new",
        "articles_failed",
        "claims_new",
        "heartbeat_at",
    ],
}
