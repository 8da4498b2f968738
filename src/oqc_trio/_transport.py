"""The one place where the network is: send :class:`oqc_trio._wire.Request` values over HTTP.

This is the only module of oqc-trio that imports httpx. A :class:`Transport` owns:

- one HTTP client per ``trio.run`` (kept in a :class:`trio.lowlevel.RunVar`), so a Jupyter
  session under ``%autoawait trio``, where every cell is a new run, gets a fresh pool instead
  of connections that belong to a dead event loop. The client is our lean HTTP/1.1 pool
  (:mod:`oqc_trio._http1`, a fraction of httpx's CPU per request) unless HTTP/2, a proxy
  from the environment or an injected httpx transport asks for ``httpx.AsyncClient``;
- a :class:`trio.CapacityLimiter` (``max_concurrency``) and an optional shared request rate
  budget (``max_requests_per_s``, a GCRA token bucket: each caller is given its slot time and
  sleeps until it, with no polling);
- retries with exponential backoff, full jitter and ``Retry-After`` as a minimum wait, for
  idempotent requests only, all bounded by the caller's ``deadline``;
- credentials: the ``Authentication-Token`` header, a lazy login for email+password, and one
  single-flight re-login plus one resend after a 401;
- the mapping of every failure into :mod:`oqc_trio.exceptions`.

How we differ from the official SDK's transport:

- ``Retry-After`` is honoured, backoff is jittered, concurrency and request rate are bounded
  (weaknesses #2, #3); every wait respects the caller's deadline (#4, #5).
- ``ConnectError``, ``ReadError``, ``RemoteProtocolError`` (e.g. HTTP/2 ``ConnectionTerminated``
  when a server closes a connection after its keep-alive request cap) are retried for
  idempotent requests and wrapped as :class:`TransportError` subclasses, never raised raw
  (#11). Failures that happen before a request leaves (connect refused, connect or pool
  timeout) are retried for POST too: nothing reached the server.
- No request ever goes anywhere but the URL it names: no status-page calls (#20).
- Plain ``http://`` is refused unless the host is loopback or ``allow_insecure_http=True``
  (#19), and the token never appears in a ``repr``, a log line or an exception message.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import math
import random
import urllib.request
from collections.abc import Callable
from importlib import metadata
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode, urlsplit

import attrs
import httpx
import trio

from . import _http1, _wire
from .auth import Credentials
from .exceptions import (
    AuthenticationError,
    ConnectionFailureException,
    InsecureURLError,
    ProtocolViolation,
    RequestTimeout,
    RequestTooLarge,
    ServerException,
    ServerUnreachable,
    TransportError,
    redact,
)

__all__ = ["Response", "RetryPolicy", "Timeouts", "Transport", "TransportStatistics"]

logger = logging.getLogger(__name__)

_CONTENT_METHODS: Final = frozenset({"POST", "PUT"})
_JSON_CONTENT: Final = {"Content-Type": "application/json"}
_ACCEPT: Final = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
# Our headers total well under 1 KB, so only bodies this close to the limit need the exact
# (header-counting) size check.
_EXACT_SIZE_FROM: Final = _wire.MAX_REQUEST_BYTES - 16_384
# Failures before the request left the machine: safe to retry whatever the method.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures after it may have left: retried only for idempotent requests.
_RETRYABLE: Final = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    _http1.HttpError,
)
_UNREACHABLE: Final = (httpx.ConnectError, httpx.ConnectTimeout, _http1.ConnectFailed)
_TIMEOUTS: Final = (httpx.TimeoutException, _http1.ReadTimedOut, _http1.WriteTimedOut)
_NOT_JSON: Final[Any] = object()
# Characters a request target may hold unescaped (RFC 3986 pchar, "/" and "%").
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~%"

HttpClient = Literal["auto", "h11", "httpx"]
#: What the lean pool's ``request`` takes: origin, method, target, headers, body.
_LeanRequest = tuple[_http1.Origin, bytes, bytes, list[tuple[bytes, bytes]], bytes | None]
#: Either client's answer (both have ``status_code``, ``headers.get`` and ``content``).
_Answer = httpx.Response | _http1.Answer


def _not_sent(exc: Exception) -> bool:
    """True when the failure happened before the request could reach the server."""
    if isinstance(exc, _http1.HttpError):
        return not exc.maybe_sent
    return isinstance(exc, _NOT_SENT)


@functools.cache
def _default_user_agent() -> str:
    try:
        version = metadata.version("oqc-trio")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"oqc-trio/{version}"


@attrs.frozen
class RetryPolicy:
    """How idempotent requests are retried: at most ``max_attempts`` sends, waiting a uniform
    random time in ``[0, min(max_delay, base_delay * 2**(n-1))]`` before retry ``n`` ("full
    jitter"), but never less than the server's ``Retry-After``.

    ``rng`` is injectable for deterministic tests. The official SDK waits a fixed 1, 2, 4, 8 s
    without jitter and ignores ``Retry-After``.
    """

    max_attempts: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    base_delay: float = attrs.field(default=0.25, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=16.0, validator=attrs.validators.ge(0))
    rng: random.Random = attrs.field(factory=random.Random, eq=False, repr=False)

    def backoff(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** min(retry_number - 1, 64))
        delay = self.rng.uniform(0.0, cap)
        if retry_after is not None and retry_after > delay:
            return retry_after
        return delay


@attrs.frozen
class Timeouts:
    """Per-request httpx timeouts in seconds (the official SDK's values by default)."""

    connect: float = 10.0
    read: float = 30.0
    write: float = 10.0
    pool: float = 10.0


@attrs.define
class TransportStatistics:
    """Counters since the transport was created (across every ``trio.run``).

    ``requests`` counts HTTP requests actually sent, per :attr:`Request.label`, retries and
    login requests included; ``retries`` the waits before a resend; ``rate_waits`` the
    requests that slept for a rate-budget slot; ``rate_limited`` the 429 answers seen;
    ``logins`` every login performed and ``relogins`` those caused by a 401;
    ``clients_opened`` the HTTP clients created (one per ``trio.run``); ``in_flight`` and
    ``peak_in_flight`` the requests on the wire now and at most.
    :meth:`Transport.statistics` returns a copy; the transport counts in its own.
    """

    requests: dict[str, int] = attrs.Factory(dict)
    retries: int = 0
    rate_waits: int = 0
    rate_limited: int = 0
    logins: int = 0
    relogins: int = 0
    clients_opened: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0

    @property
    def total_requests(self) -> int:
        """All HTTP requests sent."""
        return sum(self.requests.values())


@attrs.frozen
class Response:
    """A 200 answer: ``status``, the ``content_type`` and raw ``retry_after`` headers,
    ``elapsed`` seconds for the whole :meth:`Transport.send` (retries and waits included,
    on the trio clock), the number of ``attempts`` and the raw ``content``.

    The body is parsed once, when it arrives; :meth:`json` returns the result.
    """

    status: int
    content_type: str | None
    retry_after: str | None
    elapsed: float
    attempts: int
    content: bytes = attrs.field(repr=False)
    _payload: Any = attrs.field(repr=False, alias="payload")
    _request: _wire.Request = attrs.field(repr=False, alias="request")

    @property
    def is_json(self) -> bool:
        """True when the body parsed as JSON (some answers are a plain ``OK``)."""
        return self._payload is not _NOT_JSON

    def json(self) -> Any:
        """The parsed JSON body; :class:`ProtocolViolation` if the body is not JSON."""
        if self._payload is _NOT_JSON:
            raise ProtocolViolation(
                f"{self._request.method} {self._request.path}: the 200 answer is not JSON "
                f"({len(self.content)} bytes, content-type {self.content_type!r})"
            )
        return self._payload


class _RunState:
    """What belongs to one ``trio.run``: the HTTP client (the lean ``pool`` or an httpx
    ``client``), the limiter, the login lock, the rate-budget clock and the end of the
    pause the server last asked for with ``Retry-After`` (trio clocks differ
    between runs)."""

    __slots__ = ("client", "limiter", "login_lock", "next_slot", "paused_until", "pool")

    def __init__(
        self,
        client: httpx.AsyncClient | None,
        pool: _http1.Pool | None,
        max_concurrency: int,
    ) -> None:
        self.client = client
        self.pool = pool
        self.limiter = trio.CapacityLimiter(max_concurrency)
        self.login_lock = trio.Lock()
        self.next_slot = -math.inf
        self.paused_until: float | None = None


def _parse_json(content: bytes) -> Any:
    if not content:
        return _NOT_JSON
    try:
        return json.loads(content)
    except ValueError:
        return _NOT_JSON


def _is_loopback(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> str:
    start = url.find("://")
    end = url.find("/", start + 3) if start >= 0 else -1
    return url if end < 0 else url[:end]


def _proxied(url: str) -> bool:
    """True when the environment names a proxy for ``url`` (httpx honours those)."""
    proxies = urllib.request.getproxies_environment()
    if not proxies:
        return False
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass_environment(parts.netloc, proxies)  # type: ignore[attr-defined]


def _lean_origin(origin: str) -> _http1.Origin:
    parts = urlsplit(origin)
    return _http1.Origin(parts.scheme.lower(), parts.hostname or "", parts.port)


def _display_url(url: str) -> str:
    """The URL without user info, query or fragment (safe to show)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _check_url(url: str, *, allow_insecure_http: bool) -> None:
    """Refuse schemes other than http(s), and http to a non-loopback host unless allowed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme {scheme!r}: use https:// (or http:// locally)")
    host = parts.hostname
    if not host:
        raise ValueError(f"URL {_display_url(url)!r} has no host")
    if scheme == "http" and not allow_insecure_http and not _is_loopback(host):
        raise InsecureURLError(
            f"refusing plain http:// to {host!r}: the token would travel unencrypted. Use "
            "https://, or pass allow_insecure_http=True if you really mean it."
        )


def _late(request: _wire.Request, why: str) -> RequestTimeout:
    """The error of ``request`` stopped by its deadline (``why``: what it waited for)."""
    return RequestTimeout(
        f"{request.method} {request.path}: {why}", method=request.method, path=request.path
    )


class Transport:
    """Sends :class:`~oqc_trio._wire.Request` values and returns :class:`Response` records.

    Construction does no I/O. The HTTP client is opened lazily by the first :meth:`send` of
    each ``trio.run`` and closed by :meth:`aclose`. ``http_client`` picks it: ``"h11"``, our
    lean HTTP/1.1 pool; ``"httpx"``, an ``httpx.AsyncClient``; ``"auto"`` (the default), the
    lean pool unless ``http2=True``, a ``transport_factory`` is given or the environment names
    a proxy for ``base_url`` (``HTTPS_PROXY`` and friends, which httpx honours).
    ``transport_factory`` (tests only) returns the ``httpx.AsyncBaseTransport`` each new httpx
    client uses, e.g. an ``httpx.MockTransport``.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None = None,
        *,
        max_concurrency: int = 16,
        max_requests_per_s: float | None = None,
        rate_burst: int = 1,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        allow_insecure_http: bool = False,
        http2: bool = False,
        user_agent: str | None = None,
        transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None,
        http_client: HttpClient = "auto",
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if max_requests_per_s is not None and not max_requests_per_s > 0:
            raise ValueError("max_requests_per_s must be > 0 (or None for no limit)")
        if rate_burst < 1:
            raise ValueError("rate_burst must be >= 1")
        if http_client not in ("auto", "h11", "httpx"):
            raise ValueError(f"http_client must be 'auto', 'h11' or 'httpx', not {http_client!r}")
        if http_client == "h11" and (http2 or transport_factory is not None):
            raise ValueError("http_client='h11' speaks neither HTTP/2 nor httpx transports")
        _check_url(base_url, allow_insecure_http=allow_insecure_http)
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials if credentials is not None else Credentials()
        self._max_concurrency = max_concurrency
        self._max_requests_per_s = max_requests_per_s
        self._rate_interval = None if max_requests_per_s is None else 1.0 / max_requests_per_s
        self._rate_tolerance = (rate_burst - 1) * (self._rate_interval or 0.0)
        self._retry = retry if retry is not None else RetryPolicy()
        self._timeouts = timeouts if timeouts is not None else Timeouts()
        self._allow_insecure_http = allow_insecure_http
        self._http2 = http2
        self._user_agent = user_agent or _default_user_agent()
        self._transport_factory = transport_factory
        if http_client == "auto":
            use_httpx = http2 or transport_factory is not None or _proxied(self._base_url)
            http_client = "httpx" if use_httpx else "h11"
        self._http_client = http_client
        self._lean_origins: dict[str, _http1.Origin] = {}
        self._lean_headers: dict[tuple[_http1.Origin, bool, bool], list[tuple[bytes, bytes]]] = {}
        self._api = _wire.Api(self._base_url)
        self._checked_origins = {_origin(self._base_url)}
        self._run_state: trio.lowlevel.RunVar[_RunState | None] = trio.lowlevel.RunVar(
            "oqc_trio.transport", default=None
        )
        self._counters = TransportStatistics()
        self._login_generation = 0
        self._login_refusal: AuthenticationError | None = None
        self._header_auth: dict[str, str] | None = None
        self._header_table: tuple[tuple[dict[str, str] | None, ...], ...] = ()

    def __repr__(self) -> str:
        return (
            f"Transport({_display_url(self._base_url)!r}, "
            f"max_concurrency={self._max_concurrency}, "
            f"max_requests_per_s={self._max_requests_per_s}, http2={self._http2}, "
            f"http_client={self._http_client!r}, "
            f"allow_insecure_http={self._allow_insecure_http}, retry={self._retry!r}, "
            f"timeouts={self._timeouts!r})"
        )

    @property
    def base_url(self) -> str:
        """The service URL (no trailing slash); login requests go here."""
        return self._base_url

    @property
    def http_client(self) -> str:
        """Which HTTP client sends: ``"h11"`` (our lean pool) or ``"httpx"``."""
        return self._http_client

    @property
    def credentials(self) -> Credentials:
        """The credentials this transport authenticates with."""
        return self._credentials

    # -- lifecycle -------------------------------------------------------------------------
    def _state(self) -> _RunState:
        state = self._run_state.get()
        if state is None:
            self._counters.clients_opened += 1
            if self._http_client == "h11":
                state = _RunState(None, self._open_pool(), self._max_concurrency)
            else:
                state = _RunState(self._open_client(), None, self._max_concurrency)
            self._run_state.set(state)
        return state

    def _open_pool(self) -> _http1.Pool:
        t = self._timeouts
        return _http1.Pool(
            connect_timeout=t.connect,
            read_timeout=t.read,
            write_timeout=t.write,
            # httpx's context: certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR when set.
            ssl_context=httpx.create_ssl_context,
            max_idle=self._max_concurrency,
            # Under hypercorn's 5 s keep-alive timeout (the emulator's), so a reused
            # connection is rarely one the server is closing at that very moment.
            keepalive_expiry=4.0,
        )

    def _open_client(self) -> httpx.AsyncClient:
        t = self._timeouts
        n = self._max_concurrency
        factory = self._transport_factory
        return httpx.AsyncClient(
            headers={"User-Agent": self._user_agent},
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool),
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            http2=self._http2,
            transport=factory() if factory is not None else None,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the httpx client of the current ``trio.run`` (a later :meth:`send` opens a
        new one). Clients of earlier runs were already dropped with their run."""
        state = self._run_state.get()
        if state is None:
            return
        self._run_state.set(None)
        if state.pool is not None:
            state.pool.close()
        if state.client is not None:
            with trio.move_on_after(5.0, shield=True):
                await state.client.aclose()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def statistics(self) -> TransportStatistics:
        """A snapshot of the request counters (see :class:`TransportStatistics`)."""
        return attrs.evolve(self._counters, requests=dict(self._counters.requests))

    # -- sending ---------------------------------------------------------------------------
    async def send(self, request: _wire.Request, *, deadline: float | None = None) -> Response:
        """Send ``request`` and return its 200 answer, or raise.

        ``deadline`` is a :func:`trio.current_time` value bounding every wait (rate slot,
        capacity, the exchange itself, backoff): a retry that would sleep past it is not
        attempted and the last error is raised; an exchange still running at the deadline
        raises :class:`RequestTimeout`. Non-200 answers raise through
        :func:`_wire.exception_for_status`; a body over 128 KB raises
        :class:`RequestTooLarge` before anything is sent.
        """
        started = trio.current_time()
        state = self._state()
        if _origin(request.url) not in self._checked_origins:
            self._check_origin(request.url)
        if request.body is not None and len(request.body) > _wire.MAX_REQUEST_BYTES:
            raise self._too_large(request, len(request.body))
        credentials = self._credentials
        generation = self._login_generation
        if request.authenticated and credentials.needs_login:
            await self._login_once(state, generation, deadline, after_401=False)
            generation = self._login_generation
        response, attempts = await self._exchange(state, request, deadline, request.idempotent)
        if response.status_code == 401 and request.authenticated and credentials.can_relogin:
            # The server refused the request, so it did not run: resending is safe, even POST.
            await self._login_once(state, generation, deadline, after_401=True)
            response, more = await self._exchange(state, request, deadline, request.idempotent)
            attempts += more
        return self._finish(request, response, started, attempts)

    def _check_origin(self, url: str) -> None:
        _check_url(url, allow_insecure_http=self._allow_insecure_http)
        self._checked_origins.add(_origin(url))

    def _too_large(self, request: _wire.Request, size: int) -> RequestTooLarge:
        return RequestTooLarge(
            f"Request size exceeds the 128KB limit as it is {size} bytes "
            f"({request.method} {request.path}, body and headers); nothing was sent"
        )

    def _headers_for(self, request: _wire.Request) -> dict[str, str] | None:
        auth = self._credentials.header()
        if auth is not self._header_auth:
            anonymous = (None, _JSON_CONTENT)
            signed = (auth or None, {**_JSON_CONTENT, **auth})
            self._header_table = (anonymous, signed)
            self._header_auth = auth
            self._lean_headers = {}
        return self._header_table[request.authenticated][request.method in _CONTENT_METHODS]

    def _build(self, state: _RunState, request: _wire.Request) -> httpx.Request | _LeanRequest:
        if state.client is None:
            return self._build_lean(request)
        built = state.client.build_request(
            request.method,
            request.url,
            params=request.params or None,
            content=request.body,
            headers=self._headers_for(request),
        )
        body = request.body
        if body is not None and len(body) > _EXACT_SIZE_FROM:
            size = len(body) + _wire.headers_size(built.headers)
            if size > _wire.MAX_REQUEST_BYTES:
                raise self._too_large(request, size)
        return built

    def _build_lean(self, request: _wire.Request) -> _LeanRequest:
        url = request.url
        origin_text = _origin(url)
        origin = self._lean_origins.get(origin_text)
        if origin is None:
            origin = self._lean_origins[origin_text] = _lean_origin(origin_text)
        target = quote(url[len(origin_text) :] or "/", safe=_PATH_SAFE)
        if request.params:
            target += "?" + urlencode(request.params)
        extra = self._headers_for(request)
        key = (origin, request.authenticated, request.method in _CONTENT_METHODS)
        headers = self._lean_headers.get(key)
        if headers is None:
            fixed = {"Host": origin.host_header, "User-Agent": self._user_agent, **_ACCEPT}
            headers = [(k.encode(), v.encode()) for k, v in {**fixed, **(extra or {})}.items()]
            self._lean_headers[key] = headers
        body = request.body
        if body is not None:
            headers = [*headers, (b"Content-Length", b"%d" % len(body))]
            if len(body) > _EXACT_SIZE_FROM:
                size = len(body) + sum(len(k) + len(v) for k, v in headers)
                if size > _wire.MAX_REQUEST_BYTES:
                    raise self._too_large(request, size)
        return origin, request.method.encode(), target.encode(), headers, body

    async def _exchange(
        self, state: _RunState, request: _wire.Request, deadline: float | None, repeatable: bool
    ) -> tuple[_Answer, int]:
        """Send with retries; return the first answer that is not transient (any status).

        ``repeatable`` says whether the request may be resent after it possibly reached the
        server. Transient answers (408/429/5xx) left after the last retry are raised.
        """
        built = self._build(state, request)
        attempt = 1
        while True:
            try:
                response = await self._attempt(state, request, built, deadline)
            except _http1.InvalidRequest as exc:
                raise TransportError(
                    f"{request.method} {request.path}: {exc}",
                    method=request.method,
                    path=request.path,
                ) from None
            except (httpx.RequestError, _http1.HttpError) as exc:
                failure = self._wrap(exc, request)
                wake = None
                if _not_sent(exc) or (repeatable and isinstance(exc, _RETRYABLE)):
                    wake = self._retry_wake(attempt, None, deadline)
                if wake is None:
                    raise failure from exc
                logger.debug("%s; retrying", failure)
            else:
                status = response.status_code
                if status not in _wire.TRANSIENT_STATUSES:
                    return response, attempt
                if status == 429:
                    self._counters.rate_limited += 1
                error = self._status_error(request, response)
                after = error.retry_after if isinstance(error, ConnectionFailureException) else None
                if status == 429 and after is not None:
                    # The server asked this client to wait: every request waits, not just
                    # this one (other polls would otherwise keep coming during the pause).
                    until = trio.current_time() + after
                    if state.paused_until is None or until > state.paused_until:
                        state.paused_until = until
                wake = self._retry_wake(attempt, after, deadline) if repeatable else None
                if wake is None:
                    raise error
                logger.debug("%s %s answered %d; retrying", request.method, request.path, status)
            self._counters.retries += 1
            await trio.sleep_until(wake)
            attempt += 1

    def _retry_wake(
        self, attempt: int, retry_after: float | None, deadline: float | None
    ) -> float | None:
        """When to resend after ``attempt`` failed, or None if no retry is allowed."""
        if attempt >= self._retry.max_attempts:
            return None
        wake = trio.current_time() + self._retry.backoff(attempt, retry_after)
        if deadline is not None and wake > deadline:
            return None
        return wake

    async def _attempt(
        self,
        state: _RunState,
        request: _wire.Request,
        built: httpx.Request | _LeanRequest,
        deadline: float | None,
    ) -> _Answer:
        if state.paused_until is not None:
            await self._wait_out_pause(state, request, deadline)
        if self._rate_interval is not None:
            await self._take_rate_slot(state, request, deadline)
        if deadline is None:
            return await self._send_limited(state, request, built)
        with trio.move_on_at(deadline):
            return await self._send_limited(state, request, built)
        raise _late(request, "no answer before the deadline")

    async def _wait_out_pause(
        self, state: _RunState, request: _wire.Request, deadline: float | None
    ) -> None:
        until = state.paused_until
        assert until is not None
        if until <= trio.current_time():
            state.paused_until = None
            return
        if deadline is not None and until > deadline:
            raise _late(request, "a Retry-After pause ends after the deadline")
        await trio.sleep_until(until)

    async def _take_rate_slot(
        self, state: _RunState, request: _wire.Request, deadline: float | None
    ) -> None:
        # GCRA: next_slot is the theoretical arrival time of the next request; a burst of
        # rate_burst requests may arrive up to _rate_tolerance early.
        assert self._rate_interval is not None
        now = trio.current_time()
        send_at = max(now, state.next_slot - self._rate_tolerance)
        if deadline is not None and send_at > deadline:
            raise _late(request, "the request-rate budget has no slot before the deadline")
        state.next_slot = max(state.next_slot, send_at) + self._rate_interval
        if send_at > now:
            self._counters.rate_waits += 1
            await trio.sleep_until(send_at)

    async def _send_limited(
        self, state: _RunState, request: _wire.Request, built: httpx.Request | _LeanRequest
    ) -> _Answer:
        counters = self._counters
        limiter = state.limiter
        # Taking a free token without the extra checkpoint of ``async with`` saves a trip
        # through the scheduler per request; client.send checkpoints anyway.
        try:
            limiter.acquire_nowait()
        except trio.WouldBlock:
            await limiter.acquire()
        counters.requests[request.label] = counters.requests.get(request.label, 0) + 1
        counters.in_flight += 1
        if counters.in_flight > counters.peak_in_flight:
            counters.peak_in_flight = counters.in_flight
        try:
            if state.pool is not None:
                assert type(built) is tuple
                return await state.pool.request(*built)
            assert state.client is not None and isinstance(built, httpx.Request)
            return await state.client.send(built)
        finally:
            counters.in_flight -= 1
            limiter.release()

    # -- answers and errors ----------------------------------------------------------------
    def _finish(
        self, request: _wire.Request, response: _Answer, started: float, attempts: int
    ) -> Response:
        if response.status_code != 200:
            raise self._status_error(request, response)
        content = response.content
        payload = _parse_json(content)
        if type(payload) is dict and ("message" in payload or "messages" in payload):
            self._log_messages(payload)
        headers = response.headers
        return Response(
            status=200,
            content_type=headers.get("content-type"),
            retry_after=headers.get("retry-after"),
            elapsed=trio.current_time() - started,
            attempts=attempts,
            content=content,
            payload=payload,
            request=request,
        )

    def _log_messages(self, payload: dict[str, Any]) -> None:
        secrets = self._credentials.secrets()
        for message in _wire.server_messages(payload):
            level = logging.WARNING if message.startswith("Warning") else logging.INFO
            logger.log(level, "%s", redact(message, *secrets))

    def _status_error(self, request: _wire.Request, response: _Answer) -> ServerException:
        body = response.content
        text = body.decode("utf-8", errors="replace")
        cleaned = redact(text, *self._credentials.secrets())
        if cleaned != text:
            body = cleaned.encode("utf-8")
        headers = response.headers
        return _wire.exception_for_status(
            response.status_code,
            body,
            headers.get("content-type"),
            retry_after=headers.get("retry-after"),
            method=request.method,
            path=request.path,
        )

    def _wrap(
        self, exc: httpx.RequestError | _http1.HttpError, request: _wire.Request
    ) -> TransportError:
        where = f"{request.method} {request.path}"
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        detail = redact(detail, *self._credentials.secrets())
        kind: type[TransportError]
        if isinstance(exc, _UNREACHABLE):
            kind, message = ServerUnreachable, f"{where}: could not connect ({detail})"
        elif isinstance(exc, _TIMEOUTS):
            kind, message = RequestTimeout, f"{where}: timed out ({detail})"
        else:
            kind, message = TransportError, f"{where}: no usable answer ({detail})"
        return kind(message, method=request.method, path=request.path)

    # -- login -----------------------------------------------------------------------------
    async def _login_once(
        self, state: _RunState, seen_generation: int, deadline: float | None, *, after_401: bool
    ) -> None:
        """Log in unless another task already did since ``seen_generation`` (single flight).

        Tasks queued behind a refused login share its refusal; after a transport failure
        the next queued task tries again itself.
        """
        async with state.login_lock:
            if self._login_generation != seen_generation:
                refusal = self._login_refusal
                if refusal is None:
                    return
                raise AuthenticationError(
                    refusal.message,
                    refusal.server_error_code,
                    refusal.metadata,
                    method=refusal.method,
                    path=refusal.path,
                )
            try:
                token = await self._login(state, deadline)
            except AuthenticationError as exc:
                self._login_generation += 1
                self._login_refusal = exc
                raise
            self._credentials.accept_login_token(token)
            self._login_generation += 1
            self._login_refusal = None
            self._counters.logins += 1
            if after_401:
                self._counters.relogins += 1

    async def _login(self, state: _RunState, deadline: float | None) -> str:
        """The official flow: ``POST /admin/logout`` then ``POST /admin/login``. Both are
        safe to repeat, so they are retried like idempotent requests."""
        credentials = self._credentials
        assert credentials.email is not None and credentials.password is not None
        logout = self._api.logout()
        answer, _ = await self._exchange(state, logout, deadline, True)
        if answer.status_code != 200:
            logger.debug("logout answered %d; logging in anyway", answer.status_code)
        login = self._api.login(credentials.email, credentials.password)
        answer, _ = await self._exchange(state, login, deadline, True)
        if answer.status_code != 200:
            error = self._status_error(login, answer)
            raise AuthenticationError(
                f"login refused: {error.message}",
                error.server_error_code,
                error.metadata,
                method=login.method,
                path=login.path,
            )
        payload = _parse_json(answer.content)
        if payload is _NOT_JSON:
            raise ProtocolViolation("POST /admin/login: the 200 answer is not JSON")
        return _wire.parse_login_token(payload)
