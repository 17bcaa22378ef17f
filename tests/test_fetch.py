"""The fetcher against a real server on 127.0.0.1: limits, redirects, encodings, safety, politeness."""

from __future__ import annotations

import asyncio
import gc
import gzip
import ssl
import time

import httpcore
import httpx
import pytest

from flows import stages
from flows.fetch import Fetcher, FetchError, Validators, address_is_public, parse_retry_after
from flows.settings import Settings


def fetch(settings: Settings, url: str, **kwargs):
    async def go():
        async with Fetcher(settings) as fetcher:
            return await fetcher.fetch(url, **kwargs)

    return asyncio.run(go())


@pytest.fixture
def settings():
    return Settings(
        allow_private_networks=True,
        read_timeout_s=1,
        total_timeout_s=3,
        http_retries=1,
        http_retry_backoff_s=0.05,
        per_host_delay_s=0,
        max_body_bytes=100_000,
    )


def test_gzip_bomb_stops_at_the_limit(http_server, settings):
    bomb = gzip.compress(b"<html>" + b"a" * 50_000_000)
    assert len(bomb) < 100_000
    http_server.add("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="too large"):
        fetch(settings, http_server.url("/bomb"))


def test_gzip_page_is_decoded(http_server, settings):
    http_server.add("/z", body=b"<html><p>hello</p></html>", gzip=True)
    assert fetch(settings, http_server.url("/z")).body == b"<html><p>hello</p></html>"


def test_declared_length_over_limit_is_refused_before_reading(http_server, settings):
    http_server.add("/big", body=b"x" * 200_000)
    with pytest.raises(FetchError, match="200000 bytes declared"):
        fetch(settings, http_server.url("/big"))


def test_redirects_followed_up_to_the_limit(http_server, settings):
    for i in range(8):
        http_server.add(f"/r{i}", redirect_to=f"/r{i + 1}")
    http_server.add("/r8", body=b"<html>end</html>")
    page = fetch(settings.model_copy(update={"max_redirects": 10}), http_server.url("/r0"))
    assert page.final_url.endswith("/r8") and page.url.endswith("/r0")
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(settings, http_server.url("/r0"))


def test_redirect_to_private_address_is_checked_per_hop(http_server, settings):
    strict = settings.model_copy(update={"allow_private_networks": False})
    with pytest.raises(FetchError, match="non-public address"):
        fetch(strict, http_server.url("/anything"))
    with pytest.raises(FetchError, match="scheme 'file'"):
        fetch(settings, "file:///etc/passwd")
    http_server.add("/to-file", redirect_to="file:///etc/passwd")
    with pytest.raises(FetchError, match="scheme 'file'"):
        fetch(settings, http_server.url("/to-file"))


def test_address_classification():
    for private in [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.4",
        "169.254.169.254",
        "::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "0.0.0.0",
    ]:
        assert not address_is_public(private), private
    assert address_is_public("93.184.216.34") and address_is_public("2606:2800:220:1::1")


def test_retry_after_and_5xx_retries(http_server, settings):
    calls = {"n": 0}
    from tests.httpserver import Route

    def flaky(_handler):
        calls["n"] += 1
        return Route(status=503, headers={"Retry-After": "0"}) if calls["n"] == 1 else Route(body=b"<html>ok</html>")

    http_server.add("/flaky", Route(handler=flaky))
    assert fetch(settings, http_server.url("/flaky")).body == b"<html>ok</html>"
    http_server.add("/later", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(FetchError) as info:
        fetch(settings, http_server.url("/later"))
    assert info.value.retry_after_s == 3600 and len(http_server.hits("/later")) == 1
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60


def test_conditional_get_and_content_types(http_server, settings):
    http_server.add("/feed", body=b"<rss/>", content_type="application/rss+xml", etag='"v1"')
    page = fetch(settings, http_server.url("/feed"), kind="feed", validators=Validators(etag='"v1"'))
    assert page.status == 304
    http_server.add("/img", body=b"\x89PNG", content_type="image/png")
    with pytest.raises(FetchError, match="not an HTML page: image/png"):
        fetch(settings, http_server.url("/img"))


def test_per_host_delay_spaces_requests(http_server, settings):
    http_server.add("/p", body=b"<html>x</html>")
    polite = settings.model_copy(update={"per_host_delay_s": 0.3, "per_host_concurrency": 1})

    async def go():
        async with Fetcher(polite) as fetcher:
            await asyncio.gather(*[fetcher.fetch(http_server.url("/p")) for _ in range(3)])

    start = time.monotonic()
    asyncio.run(go())
    stamps = [r.at for r in http_server.hits("/p")]
    assert len(stamps) == 3 and time.monotonic() - start >= 0.6
    assert all(b - a >= 0.25 for a, b in zip(stamps, stamps[1:], strict=False))


def fetch_all(settings: Settings, requests: list[tuple[str, Validators | None]]) -> list:
    """Fetch every (url, validators) through one fetcher, one after another."""

    async def go():
        async with Fetcher(settings) as fetcher:
            return [await fetcher.fetch(url, kind="feed", validators=v) for url, v in requests]

    return asyncio.run(go())


def test_not_modified_and_redirect_answers_keep_their_connection(http_server, settings):
    # A 304 or a redirect closed unread costs the next request a new TCP (and TLS) handshake.
    feeds = [
        http_server.add(f"/f{i}.xml", body=b"<rss/>", content_type="application/rss+xml", etag=f'"e{i}"')
        for i in range(10)
    ]
    http_server.add("/moved.xml", redirect_to="/f0.xml")
    one_at_a_time = settings.model_copy(update={"per_host_concurrency": 1})
    answers = fetch_all(one_at_a_time, [(url, Validators(f'"e{i}"')) for i, url in enumerate(feeds)])
    assert {a.status for a in answers} == {304}
    assert http_server.connections == 1
    fetch_all(one_at_a_time, [(http_server.url("/moved.xml"), None), (feeds[1], None)])
    assert http_server.connections == 2


def test_idle_origins_beyond_the_global_limit_are_closed_least_recent_first(settings):
    from tests.httpserver import TestServer

    servers = [TestServer().start() for _ in range(3)]
    try:
        pages = [s.add("/feed.xml", body=b"<rss/>", content_type="application/rss+xml") for s in servers]
        two_pools = settings.model_copy(update={"total_concurrency": 2})
        # a, b, c: opening c's pool closes a's (the least recently used); b's stays open for b.
        fetch_all(two_pools, [(pages[0], None), (pages[1], None), (pages[2], None), (pages[1], None), (pages[0], None)])
        assert [s.connections for s in servers] == [2, 1, 1]
    finally:
        for s in servers:
            s.stop()


def _alive(kinds: tuple[type, ...]) -> list[object]:
    return [o for o in gc.get_objects() if isinstance(o, kinds)]


def test_a_batch_fetch_leaves_no_connection_or_tls_context_for_the_garbage_collector(http_server, settings):
    # Left in reference cycles, a batch's pools and TLS context (~0.7 MiB) lived until a collection came,
    # so a worker's next parse met none, one or two batches' worth of them (benchmarks/RESULTS.md).
    from storage.queue import Work

    http_server.add("/story", body=b"<html><body><p>" + b"word " * 2_000 + b"</p></body></html>")
    http_server.add("/moved", redirect_to="/story")
    http_server.add("/broken", status=500, body=b"oops")
    http_server.add("/packed", body=b"<html><p>packed</p></html>", gzip=True)
    paths = ["/story", "/moved", "/broken", "/packed", "/missing"]
    work = [Work(i, http_server.url(p), "feed", None, None, None) for i, p in enumerate(paths)]
    kinds = (ssl.SSLContext, httpx.AsyncClient, httpx.Response, httpcore.AsyncConnectionPool)
    gc.collect()
    before = len(_alive(kinds))
    gc.disable()
    try:
        results = asyncio.run(stages._fetch_all(settings, work))
        left = _alive(kinds)
    finally:
        gc.enable()
    assert [type(r).__name__ for r in results] == ["Page", "Page", "FetchError", "Page", "FetchError"]
    assert "HTTP 500" in str(results[2]) and "HTTP 404" in str(results[4])
    assert len(left) == before, sorted(type(o).__name__ for o in left)
