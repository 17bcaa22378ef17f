"""The ``claimwire`` command. Thin: parse options, call a flow or a storage query, print."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="claimwire: watch news feeds, extract attributed claims into SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=False)
err = Console(stderr=True, soft_wrap=True)  # error messages carry paths and URLs: never wrap them

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default $CLAIMWIRE_DB or ./data/claimwire.db)")
]
FeedsOption = Annotated[Path | None, typer.Option("--feeds", help="Feeds file (default: the project's feeds.yaml)")]
PrivateOption = Annotated[
    bool,
    typer.Option("--allow-private-networks", help="Permit fetching from loopback/private addresses (tests, intranets)"),
]


def _prepare_run() -> None:
    """Process-wide settings for a command that runs flows, made before Prefect or any thread starts."""
    # The CLI prints its own summary; Prefect's INFO chatter would bury it.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Before Prefect starts threads: one malloc arena here and in every worker process (flows/allocator.py).
    from flows.allocator import limit_malloc_arenas

    limit_malloc_arenas()


def _configured_api_url() -> str | None:
    """The Prefect API configured by environment or profile, if any."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


@contextlib.contextmanager
def _prefect_api() -> Iterator[None]:
    """The Prefect API the command's flows report to: the configured one, else a throwaway server of the
    command's own on a port it holds (flows/prefect_server.py: Prefect's own can end up sharing another
    run's), which the processes the run starts report to as well."""
    if _configured_api_url():
        yield
        return
    from flows.prefect_server import reporting_to, throwaway_prefect_server

    with throwaway_prefect_server() as url, reporting_to(url):
        yield


@app.command()
def init(db: DbOption = None, no_seed: Annotated[bool, typer.Option("--no-seed")] = False) -> None:
    """Create or upgrade the database schema and load the seed corpus (both idempotent)."""
    from flows.settings import Settings
    from flows.stages import load_seed_corpus
    from storage import init_db, make_engine
    from storage.runs import finish_run, start_run

    settings = Settings(**({"db": db} if db else {}))
    engine = make_engine(settings.db)
    migrated = init_db(engine)
    console.print(
        f"schema: {'migrated to newest' if migrated else 'already current'} ({engine.url.render_as_string()})"
    )
    if not no_seed:
        stats = load_seed_corpus(engine, settings)
        if stats.articles_new:
            run_id = start_run(engine, "seed")
            finish_run(engine, run_id, stats)
        console.print(f"seed corpus: {stats.articles_new} articles loaded, {stats.claims_new} claims")
    engine.dispose()


@app.command()
def ingest(
    feeds: FeedsOption = None,
    db: DbOption = None,
    allow_private_networks: PrivateOption = False,
    workers: Annotated[int | None, typer.Option(help="Parallel workers (tasks draining the queue)")] = None,
    task_runner: Annotated[str | None, typer.Option(help="thread | process | dask")] = None,
    overlap: Annotated[str | None, typer.Option(help="When another ingest runs: skip | wait")] = None,
) -> None:
    """Run one ingest pass over every due feed and print a summary."""
    _prepare_run()
    from flows.config import ConfigError, effective_settings
    from flows.ingest import ingest_flow

    try:
        settings, _ = effective_settings(
            feeds,
            db=db,
            allow_private_networks=allow_private_networks or None,
            workers=workers,
            task_runner=task_runner,
            overlap=overlap,
        )
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    with _prefect_api():
        result = ingest_flow(
            feeds_file=str(settings.feeds_file),
            db=db,
            allow_private_networks=allow_private_networks or None,
            workers=workers,
            task_runner_name=task_runner,
            overlap=overlap,
        )
    _print_summary("ingest", result)


@app.command()
def backfill(
    urls: Annotated[Path | None, typer.Option("--urls", help="File of article URLs, one per line (# comments)")] = None,
    feed: Annotated[str | None, typer.Option("--feed", help="Every item this feed still lists")] = None,
    sitemap: Annotated[str | None, typer.Option("--sitemap", help="A news sitemap or sitemap index")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only items published on/after this date (YYYY-MM-DD)")
    ] = None,
    retry_failures: Annotated[
        bool, typer.Option("--retry-failures", help="Retry every recorded URL failure now")
    ] = False,
    db: DbOption = None,
    feeds: FeedsOption = None,
    allow_private_networks: PrivateOption = False,
    workers: Annotated[int | None, typer.Option(help="Parallel workers")] = None,
) -> None:
    """Fetch articles from a URL list, a feed or a sitemap (origin 'backfill'); resumable."""
    _prepare_run()
    from flows.backfill import BackfillSourceError, backfill_flow

    if not (urls or feed or sitemap or retry_failures):
        err.print("error: give --urls, --feed, --sitemap or --retry-failures")
        raise typer.Exit(2)
    if urls and not urls.exists():
        err.print(f"error: URL list not found: {urls}")
        raise typer.Exit(2)
    if since:
        _check_date(since)
    with _prefect_api(), _QueueProgress(db, "backfill"):
        try:
            result = backfill_flow(
                urls_file=str(urls) if urls else None,
                feed=feed,
                sitemap=sitemap,
                since=since,
                retry_failures=retry_failures,
                db=db,
                feeds_file=str(feeds) if feeds else None,
                allow_private_networks=allow_private_networks or None,
                workers=workers,
            )
        except BackfillSourceError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    _print_summary("backfill", result)


def _check_date(value: str) -> None:
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError as exc:
        err.print(f"error: --since wants a date like 2024-01-31, got {value!r}")
        raise typer.Exit(2) from exc


class _QueueProgress:
    """A terminal progress bar fed by the queue table, so long backfills show how far they are."""

    def __init__(self, db: str | None, origin: str):
        self.db, self.origin = db, origin
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        if sys.stderr.isatty():
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from sqlalchemy import func, select

        from storage import make_engine
        from storage.models import QueuedUrl

        engine = make_engine(self.db, read_only=True)
        total = None
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task(f"{self.origin}: waiting for the queue", total=None)
            while not self._stop.wait(1.0):
                try:
                    with engine.connect() as conn:
                        remaining = conn.execute(
                            select(func.count())
                            .select_from(QueuedUrl)
                            .where(QueuedUrl.origin == self.origin, QueuedUrl.status.in_(("pending", "fetching")))
                        ).scalar_one()
                except Exception:
                    continue  # schema not there yet
                if total is None or remaining > total:
                    total = remaining
                progress.update(
                    task,
                    description=f"{self.origin}: fetching",
                    total=total or None,
                    completed=(total or 0) - remaining,
                )
        engine.dispose()


@app.command()
def reprocess(
    since: Annotated[
        str | None, typer.Option("--since", help="Articles published/fetched on or after this date")
    ] = None,
    origin: Annotated[str | None, typer.Option("--origin", help="seed | feed | backfill")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every relevant article, even if already current")] = False,
    db: DbOption = None,
) -> None:
    """Re-run claim extraction on stored text for articles with claims from an older extractor."""
    _prepare_run()
    from flows.reprocess import reprocess_flow

    if origin and origin not in ("seed", "feed", "backfill"):
        err.print("error: --origin is one of seed, feed, backfill")
        raise typer.Exit(2)
    if since:
        _check_date(since)
    with _prefect_api():
        result = reprocess_flow(since=since, origin=origin, everything=everything, db=db)
    _print_summary("reprocess", result)


@app.command()
def serve(
    feeds: FeedsOption = None,
    db: DbOption = None,
    interval_minutes: Annotated[float, typer.Option("--interval", help="Minutes between ingest runs")] = 15,
    allow_private_networks: PrivateOption = False,
    overlap: Annotated[str, typer.Option(help="A run still going when the next is due: skip | wait")] = "skip",
) -> None:
    """Run the ingest schedule in this process (Prefect serve); Ctrl-C stops it.

    With PREFECT_API_URL set, runs are scheduled by that server; without it a private local Prefect
    server (data/prefect) is started for the schedule and stopped with this command."""
    _prepare_run()
    import signal
    from datetime import timedelta

    from flows.prefect_server import local_prefect_server, reporting_to
    from flows.serving import serve_until_stopped

    if overlap not in ("skip", "wait"):
        err.print("error: --overlap is skip or wait")
        raise typer.Exit(2)
    # Ctrl-C and a service manager's SIGTERM both stop the schedule the same way, here while the local
    # server starts and in serve_until_stopped while the schedule runs.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with contextlib.ExitStack() as stack:
        if not _configured_api_url():
            console.print("starting a local Prefect server for the schedule …")
            url = stack.enter_context(local_prefect_server(Path("data") / "prefect"))
            stack.enter_context(reporting_to(url))
        from flows.ingest import ingest_flow

        deployment = ingest_flow.to_deployment(
            name="ingest-served",
            interval=timedelta(minutes=interval_minutes),
            parameters={
                "feeds_file": str(feeds) if feeds else None,
                "db": db,
                "allow_private_networks": allow_private_networks or None,
                "overlap": overlap,
            },
        )
        console.print(f"serving ingest every {interval_minutes:g} minutes (overlap: {overlap}); Ctrl-C to stop")
        serve_until_stopped(deployment)  # the runs it started have stopped before the server does
    console.print("stopped")


@app.command()
def dashboard(
    db: DbOption = None,
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --token")] = "127.0.0.1",
    token: Annotated[
        str | None, typer.Option(envvar="CLAIMWIRE_DASHBOARD_TOKEN", help="Access token required from browsers")
    ] = None,
) -> None:
    """Serve the read-only claims dashboard in a browser."""
    import uvicorn

    from flows.dashboard.app import create_app

    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        err.print(
            "error: serving on a non-loopback address needs an access token (--token or CLAIMWIRE_DASHBOARD_TOKEN)"
        )
        raise typer.Exit(2)
    console.print(f"dashboard on http://{host}:{port}/" + (f"?token={token}" if token else ""))
    uvicorn.run(create_app(db, token=token), host=host, port=port, log_level="warning")


@app.command()
def export(
    what: Annotated[str, typer.Option("--what", help="claims | articles | quantities")] = "claims",
    fmt: Annotated[str, typer.Option("--format", help="csv | jsonl | parquet")] = "csv",
    since: Annotated[str | None, typer.Option("--since", help="Only rows published on/after this date")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")] = None,
    db: DbOption = None,
) -> None:
    """Stream a public view to CSV, JSON lines or Parquet."""
    from datetime import UTC, datetime

    from storage import make_engine
    from storage.export import VIEWS
    from storage.export import export as run_export

    if what not in VIEWS:
        err.print(f"error: --what is one of {', '.join(VIEWS)}")
        raise typer.Exit(2)
    if fmt not in ("csv", "jsonl", "parquet"):
        err.print("error: --format is one of csv, jsonl, parquet")
        raise typer.Exit(2)
    if fmt == "parquet" and output is None:
        err.print("error: parquet needs --output FILE")
        raise typer.Exit(2)
    since_at = None
    if since:
        _check_date(since)
        since_at = datetime.fromisoformat(since).replace(tzinfo=UTC)
    engine = make_engine(db, read_only=True)
    if output is None:
        count = run_export(engine, what, fmt, sys.stdout, since_at)
    elif fmt == "parquet":
        with output.open("wb") as handle:
            count = run_export(engine, what, fmt, handle, since_at)
    else:
        with output.open("w", encoding="utf-8", newline="") as handle:
            count = run_export(engine, what, fmt, handle, since_at)
    err.print(f"exported {count} {what}")
    engine.dispose()


def _print_summary(kind: str, result: dict) -> None:
    if result.get("status") == "skipped":
        console.print(f"{kind}: skipped — {result.get('reason')}")
        return
    table = Table(title=f"{kind} run {result.get('run_id')}: {result.get('status')}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key in ("status", "run_id"):
            continue
        table.add_row(key, f"{value:.2f}" if isinstance(value, float) else str(value))
    console.print(table)


@app.command()
def status(db: DbOption = None) -> None:
    """What is in the database: articles by origin, claims, last runs, failing feeds, open failures."""
    from storage import make_engine, queries
    from storage.clock import database_now
    from storage.schema import current_revision

    engine = make_engine(db, read_only=True)
    if current_revision(engine) is None:
        err.print("database not initialised: run `claimwire init` first")
        raise typer.Exit(1)
    with engine.connect() as conn:
        articles = queries.article_counts(conn)
        table = Table(title="articles")
        for col in ("origin", "articles", "duplicates", "with claims"):
            table.add_column(col, justify="right" if col != "origin" else "left")
        for origin, c in sorted(articles.items()):
            table.add_row(origin, str(c["articles"]), str(c["duplicates"]), str(c["with_claims"]))
        console.print(table)
        claims = queries.claim_counts(conn)
        console.print("claims: " + ", ".join(f"{k} {v}" for k, v in claims.items()))
        feeds = queries.feeds_overview(conn)
        console.print(f"feeds: {feeds['feeds']} configured, {feeds['failing']} failing")
        runs = Table(title="last runs")
        for col in ("run", "kind", "started", "status", "feeds", "new", "failed", "claims"):
            # A narrow terminal folds a failure's reason instead of cutting it to "KeyboardInt…".
            runs.add_column(col, overflow="fold" if col == "status" else "ellipsis")
        now = database_now(conn)  # the clock the runs' heartbeats were written by
        for r in queries.recent_runs(conn):
            runs.add_row(
                str(r.id),
                r.kind,
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                queries.run_state(r, now),
                str(r.feeds_polled),
                str(r.articles_new),
                str(r.articles_failed),
                str(r.claims_new),
            )
        console.print(runs)
        failing = queries.failing_feeds(conn)
        if failing:
            ft = Table(title="failing feeds")
            for col in ("feed", "failures", "last error", "next poll"):
                ft.add_column(col)
            for f in failing:
                ft.add_row(
                    f.url,
                    str(f.consecutive_failures),
                    (f.last_error or "")[:90],
                    f.next_poll_at.strftime("%Y-%m-%d %H:%M") if f.next_poll_at else "",
                )
            console.print(ft)
        open_failures = queries.open_failures(conn, limit=20)
        if open_failures:
            ot = Table(title="open failures (latest 20) " + str(queries.open_failure_count(conn)))
            for col in ("kind", "target", "stage", "attempts", "error", "next retry"):
                ot.add_column(col)
            for f in open_failures:
                ot.add_row(
                    f.kind,
                    f.target[:70],
                    f.stage,
                    str(f.attempts),
                    f.error[:60],
                    f.next_retry_at.strftime("%Y-%m-%d %H:%M") if f.next_retry_at else "gave up",
                )
            console.print(ot)
    engine.dispose()


@app.command("extract-text")
def extract_text(files: Annotated[list[Path], typer.Argument(help="Saved HTML files")]) -> None:
    """Run text extraction alone on saved HTML files; one JSON object per file."""
    from extractors.article import ExtractionError, decode_html, extract_article

    for path in files:
        record = {"file": str(path)}
        try:
            raw = path.read_bytes()
            if path.suffix == ".gz":
                import gzip

                raw = gzip.decompress(raw)
            article = extract_article(decode_html(raw), path.resolve().as_uri())
            record.update(
                title=article.title,
                text=article.text,
                author=article.author,
                published=article.published_at.isoformat() if article.published_at else None,
                language=article.language,
                method=article.method,
            )
        except (OSError, ExtractionError) as exc:
            record.update(title=None, text="", author=None, published=None, language=None, method=None, error=str(exc))
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


@app.command("extract-claims")
def extract_claims(files: Annotated[list[Path], typer.Argument(help="Plain-text files")]) -> None:
    """Run claim extraction alone on plain-text files; one JSON object per claim and line."""
    from extractors.claims import ClaimExtractor

    extractor = ClaimExtractor()
    texts = [p.read_text(encoding="utf-8") for p in files]
    for path, claims in zip(files, extractor.extract_many(texts), strict=True):
        for claim in claims:
            sys.stdout.write(json.dumps({"file": str(path), **claim.as_dict()}, ensure_ascii=False) + "\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
