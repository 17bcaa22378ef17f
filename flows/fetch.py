"""The one HTTP client: polite per host, bounded in time and size, and safe with untrusted URLs.

* politeness: a per-host semaphore and minimum delay between request starts, a global limit;
* safety: http(s) only; every hop's host is resolved and refused when it points at loopback,
  private, link-local (cloud metadata), multicast or reserved addresses, unless the user opts in;
  the connection then goes to the checked address (Host header and TLS SNI keep the name), so a
  second DNS answer cannot swap it (DNS rebinding);
* limits: connect/read timeouts and a total deadline, a redirect limit with loop detection, a body
  limit enforced while streaming and after decompression (gzip bombs stop at the limit);
* retries: 429 and 5xx with exponential backoff, honouring Retry-After up to a cap.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import socket
import time
import zlib
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

import httpx

from extractors.records import Failure, Page
from flows.settings import Settings

HTML_TYPES = ("text/html", "application/xhtml+xml")
REDIRECT_CODES = (301, 302, 303, 307, 308)
# Bodies of 304s, redirects and errors up to this size are read and dropped to keep the connection.
DISCARD_LIMIT = 64 * 1024


class FetchError(Exception):
    def __init__(self, message: str, *, retry_after_s: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.permanent = permanent

    def detached(self) -> FetchError:
        """This error without the frames it was raised through (and its cause's), for keeping as a result:
        those frames hold the fetcher, its pools and their TLS context for as long as the error lives."""
        self.__traceback__ = self.__cause__ = self.__context__ = None
        return self


class BlockedAddress(FetchError):
    def __init__(self, message: str):
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class Validators:
    etag: str | None = None
    last_modified: str | None = None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now or time.time()))


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT)
    )


_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class _Decoder:
    """Content-Encoding decoder that never produces more than it is asked for."""

    def __init__(self, encoding: str):
        encoding = (encoding or "identity").lower().strip()
        if encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj()
        elif encoding in ("identity", ""):
            self._z = None
        else:
            raise FetchError(f"unsupported content-encoding {encoding!r}", permanent=True)

    def feed(self, chunk: bytes, budget: int) -> bytes:
        if self._z is None:
            return chunk[: budget + 1]
        out = self._z.decompress(self._z.unconsumed_tail + chunk, budget + 1)
        return out


class Fetcher:
    """Async fetcher shared by feed polls and page fetches within one process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._global = asyncio.Semaphore(settings.total_concurrency)
        self._host_sems: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host_concurrency)
        )
        self._host_next: dict[str, float] = defaultdict(float)
        self._host_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Checked addresses, one lookup per host and port for this fetcher's life (a run's batch): a
        # thousand feeds on one host cost one DNS query, and every request goes to the address checked.
        self._resolved: dict[tuple[str, int], str] = {}
        self._timeout = httpx.Timeout(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.read_timeout_s,
            pool=settings.total_timeout_s,
        )
        # One CA bundle load, shared by every pool. Per fetcher rather than per process: one context held for
        # the process's life raised a one-worker run's peak ~0.5 MiB (benchmarks/RESULTS.md, "One TLS context").
        self._ssl_context = httpx.create_ssl_context(trust_env=False)
        # One small connection pool per origin, at most total_concurrency of them (least recently used
        # idle one closed first): httpcore's pool scans every connection it holds on each request, so a
        # single pool across a thousand feeds' hosts costs ~4 ms of CPU a request at 32 connections,
        # and ~1 ms with the two a host is allowed. Open sockets stay under total × per-host.
        self._pools: OrderedDict[tuple[str, str, int], httpx.AsyncClient] = OrderedDict()
        self._pool_users: dict[tuple[str, str, int], int] = defaultdict(int)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for client in pools:
            await client.aclose()

    def _new_pool(self) -> httpx.AsyncClient:
        per_host = self.settings.per_host_concurrency
        return httpx.AsyncClient(
            timeout=self._timeout,
            verify=self._ssl_context,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": self.settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            limits=httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host),
        )

    async def _pool_for(self, origin: tuple[str, str, int]) -> httpx.AsyncClient:
        """The origin's pool, opened on first use and counted as in use (the caller gives it back with
        ``_pool_users[origin] -= 1``); closes idle pools beyond total_concurrency."""
        client = self._pools.get(origin)
        if client is None:
            client = self._pools[origin] = self._new_pool()
        self._pools.move_to_end(origin)
        # Counted before the first await below, so a request closing pools meanwhile spares this one.
        self._pool_users[origin] += 1
        while len(self._pools) > self.settings.total_concurrency:
            idle = next((o for o in self._pools if not self._pool_users[o]), None)
            if idle is None:
                break
            self._pool_users.pop(idle, None)
            await self._pools.pop(idle).aclose()
        return client

    async def _resolve_checked(self, host: str, port: int) -> str:
        cached = self._resolved.get((host, port))
        if cached is not None:
            return cached
        address = await self._lookup_checked(host, port)
        self._resolved[(host, port)] = address
        return address

    async def _lookup_checked(self, host: str, port: int) -> str:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchError(f"DNS lookup failed for {host}: {exc}") from exc
        addresses = [info[4][0] for info in infos]
        if not addresses:
            raise FetchError(f"DNS lookup for {host} returned no address")
        if not self.settings.allow_private_networks:
            blocked = [a for a in addresses if not address_is_public(a)]
            if blocked:
                raise BlockedAddress(
                    f"refused: {host} resolves to non-public address {blocked[0]} "
                    "(use --allow-private-networks to permit)"
                )
        return addresses[0]

    async def _polite(self, host: str) -> None:
        async with self._host_locks[host]:
            wait = self._host_next[host] - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._host_next[host] = time.monotonic() + self.settings.per_host_delay_s

    async def fetch(self, url: str, *, kind: str = "page", validators: Validators | None = None) -> Page:
        """Fetch ``url`` (kind 'page' or 'feed'). Raises FetchError with a readable message."""
        deadline = self.settings.total_timeout_s
        try:
            return await asyncio.wait_for(self._fetch_with_retries(url, kind, validators), deadline)
        except TimeoutError as exc:
            raise FetchError(f"timed out after {deadline:.0f}s") from exc

    async def _fetch_with_retries(self, url: str, kind: str, validators: Validators | None) -> Page:
        attempt = 0
        while True:
            try:
                return await self._fetch_following(url, kind, validators)
            except FetchError as exc:
                retryable = not exc.permanent and attempt < self.settings.http_retries
                if not retryable:
                    raise
                delay = self.settings.http_retry_backoff_s * (2**attempt)
                if exc.retry_after_s is not None:
                    if exc.retry_after_s > self.settings.max_retry_after_s:
                        raise  # too long to wait within this run; the failure table retries later
                    delay = max(delay, exc.retry_after_s)
                attempt += 1
                await asyncio.sleep(delay)

    async def _fetch_following(self, url: str, kind: str, validators: Validators | None) -> Page:
        seen: set[str] = set()
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            if current in seen:
                raise FetchError(f"redirect loop at {current}", permanent=True)
            seen.add(current)
            result = await self._fetch_once(current, kind, validators if current == url else None)
            if isinstance(result, str):
                current = result
                continue
            return Page(
                url=url,
                final_url=current,
                status=result[0],
                content_type=result[1],
                body=result[2],
                fetched_at=datetime.now(UTC),
                headers=result[3],
            )
        raise FetchError(f"too many redirects (more than {self.settings.max_redirects})", permanent=True)

    async def _fetch_once(self, url: str, kind: str, validators: Validators | None):
        try:
            request_url = httpx.URL(url)
        except Exception as exc:
            raise FetchError(f"invalid URL: {exc}", permanent=True) from exc
        if request_url.scheme not in ("http", "https"):
            raise FetchError(f"refused: scheme {request_url.scheme!r} is not http(s)", permanent=True)
        host = request_url.host
        if not host:
            raise FetchError("invalid URL: no host", permanent=True)
        port = request_url.port or (443 if request_url.scheme == "https" else 80)
        address = await self._resolve_checked(host, port)
        headers = {"Host": request_url.netloc.decode("ascii")}
        headers["Accept"] = (
            "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
            if kind == "feed"
            else "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
        )
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        pinned = request_url.copy_with(host=address)
        extensions = {"sni_hostname": host} if request_url.scheme == "https" else {}
        limit = self.settings.max_feed_bytes if kind == "feed" else self.settings.max_body_bytes
        origin = (request_url.scheme, host, port)
        # The host's slot first: a request queued behind a busy host must not hold one of the global slots.
        async with self._host_sems[host], self._global:
            await self._polite(host)
            client = await self._pool_for(origin)
            try:
                try:
                    request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
                    response = await client.send(request, stream=True)
                except httpx.TimeoutException as exc:
                    raise FetchError(f"timeout: {type(exc).__name__}") from exc
                except httpx.HTTPError as exc:
                    raise FetchError(f"connection failed: {type(exc).__name__}: {exc}") from exc
                try:
                    return await self._read(response, url, kind, limit)
                finally:
                    await response.aclose()
                    _drop_stream(response)
            finally:
                self._pool_users[origin] -= 1

    async def _read(self, response: httpx.Response, url: str, kind: str, limit: int):
        status = response.status_code
        if status in REDIRECT_CODES or status == 304 or status >= 400:
            await _discard_body(response)
        if status in REDIRECT_CODES:
            location = response.headers.get("location")
            if not location:
                raise FetchError(f"HTTP {status} without Location", permanent=True)
            return urljoin(url, location)
        if status == 304:
            return (304, response.headers.get("content-type", ""), b"", dict(response.headers))
        if status == 429 or status >= 500:
            raise FetchError(f"HTTP {status}", retry_after_s=parse_retry_after(response.headers.get("retry-after")))
        if status >= 400:
            raise FetchError(f"HTTP {status}", permanent=status in (404, 410, 451))
        content_type = response.headers.get("content-type", "")
        media = content_type.split(";")[0].strip().lower()
        if kind == "page" and media and media not in HTML_TYPES:
            raise FetchError(f"not an HTML page: {media}", permanent=True)
        if kind == "feed" and media.startswith(("image/", "audio/", "video/", "application/pdf")):
            raise FetchError(f"not a feed: {media}", permanent=True)
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FetchError(f"too large: {int(declared)} bytes declared, limit {limit}", permanent=True)
        decoder = _Decoder(response.headers.get("content-encoding", ""))
        body = bytearray()
        try:
            async for chunk in response.aiter_raw():
                body += decoder.feed(chunk, limit - len(body))
                if len(body) > limit:
                    raise FetchError(f"too large: more than {limit} bytes", permanent=True)
        except zlib.error as exc:
            raise FetchError(f"corrupt compressed body: {exc}", permanent=True) from exc
        except httpx.TimeoutException as exc:
            raise FetchError(f"timeout while reading: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"connection broke while reading: {exc}") from exc
        if (
            kind == "page"
            and not media
            and not bytes(body[:1024]).lstrip().lower().startswith((b"<!doctype", b"<html"))
        ):
            raise FetchError("not an HTML page: no content type and no HTML prolog", permanent=True)
        return (status, content_type, bytes(body), dict(response.headers))


def _drop_stream(response: httpx.Response) -> None:
    """Part a closed response from its stream, so that it is freed when the caller drops it.

    httpx's streamed response and its stream refer to each other, and through the stream the response
    holds its connection, its pool and the pool's TLS context (~0.7 MiB with its CA bundle). As a cycle
    all of that waited for the next garbage collection, so a worker's parse met none, one or two
    batches' worth of it as the collector's timing fell (benchmarks/RESULTS.md, "Closed responses freed
    at once"). Parted, a fetcher's pools and context go when it closes.
    """
    response.stream = httpx.ByteStream(b"")


async def _discard_body(response: httpx.Response, limit: int = DISCARD_LIMIT) -> None:
    """Read a body we will not use, if it is small, so the connection can serve the next request.

    httpcore reuses a connection only once its response has been read to the end: closing a 304 or a
    redirect unread drops it, and a poll of a thousand feeds on one host then pays a thousand TCP (and
    TLS) handshakes instead of a few. A large or slow error body is not worth waiting for: closing it
    drops the connection, as before."""
    received = 0
    try:
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > limit:
                return
    except httpx.HTTPError:
        return


def failure_from(exc: FetchError, kind: str, target: str, stage: str = "fetch") -> Failure:
    return Failure(kind, target, stage, str(exc), retry_after_s=exc.retry_after_s, permanent=exc.permanent)
