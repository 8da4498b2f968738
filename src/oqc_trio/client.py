"""``OqcSdk``: the entry point. Lifecycle, QPU queries, ``create_job``, snapshots.

Same constructor and methods as the official ``oqc_qcaas_sdk.client.OqcSdk``, natively under
trio. Differences (``official-sdk-behaviour.md`` §c):

- ``open()`` raises a clear error when the server is unreachable, the credentials are wrong or
  no QPU is active (#18); the official SDK logs and stays silently half-initialised.
- No hidden outbound calls: the official SDK pings OQC's public status page on errors (#20).
- ``create_job`` with lists builds **all combinations** (cartesian product, program outermost,
  then QPU, then config) with plain ``str`` values (#26) and no size cap; the official SDK
  numpy-broadcasts equal-length lists and caps at 200 jobs.
- ``open()``/``close()`` work across IPython ``%autoawait trio`` cells: each cell is a new
  ``trio.run`` and the transport opens a fresh connection pool for it.
- Keyword options: ``dialect``, ``max_concurrency``, ``max_requests_per_s``, ``poll_policy``,
  ``allow_insecure_http``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from . import _wire
from ._actors.policy import PollPolicy
from ._actors.runtime import Runtime
from ._actors.stream import JobStream, open_stream
from ._transport import HttpClient, Transport
from .auth import Credentials
from .exceptions import NoActiveQpuError, NotOpenError, UnknownQpuError
from .job import CompositeJob, Job

__all__ = ["OqcSdk"]

# Room left for headers when sizing submit bodies against the 128 KB request limit.
_HEADER_ALLOWANCE = 2048


def _as_date(value: dt.date | dt.datetime | str | None) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"date_filter must be 'YYYY-MM-DD', got {value!r}") from None
    raise TypeError(f"date_filter must be a date, datetime or 'YYYY-MM-DD', not {type(value)}")


def _listify(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class OqcSdk:
    """A client of one QCaaS server.

    ``async with OqcSdk(url, authentication_token=...) as sdk:`` or ``await sdk.open()`` /
    ``await sdk.close()``. With email+password, ``open()`` logs in (its QPU discovery is the
    first authenticated request) and a rejected token later causes one re-login.
    ``auto_authenticate`` is accepted for compatibility with older clients.

    Unlike the official SDK, requests go through our lean HTTP/1.1 client on trio
    (``http_client="auto"``, a fraction of httpx's CPU per request); ``http_client="httpx"``
    forces ``httpx.AsyncClient``, as do ``http2=True`` and a proxy named by the environment
    (``HTTPS_PROXY``...). Tests that mock with respx need ``http_client="httpx"``.
    """

    def __init__(
        self,
        url: str,
        authentication_token: str | None = None,
        email: str | None = None,
        password: str | None = None,
        auto_authenticate: bool = True,
        default_qpu_id: str | None = None,
        *,
        credential: Credentials | None = None,
        dialect: _wire.Dialect | str | None = None,
        max_concurrency: int = 16,
        max_requests_per_s: float | None = None,
        poll_policy: PollPolicy | None = None,
        submit_concurrency: int = 4,
        allow_insecure_http: bool = False,
        http2: bool = False,
        http_client: HttpClient = "auto",
        **transport_options: Any,
    ) -> None:
        if credential is not None and (authentication_token or email or password):
            raise ValueError("pass either credential= or token/email/password, not both")
        self._credentials = credential or Credentials(
            token=authentication_token, email=email, password=password
        )
        self.url = url.rstrip("/")
        self.dialect = _wire.resolve_dialect(dialect, os.environ)
        self.api = _wire.Api(self.url, self.dialect)
        self.auto_authenticate = auto_authenticate
        self.poll_policy = poll_policy or PollPolicy()
        self._submit_concurrency = submit_concurrency
        self._transport = Transport(
            self.url,
            self._credentials,
            max_concurrency=max_concurrency,
            max_requests_per_s=max_requests_per_s,
            allow_insecure_http=allow_insecure_http,
            http2=http2,
            http_client=http_client,
            **transport_options,
        )
        self._default_qpu_id = default_qpu_id
        self._qpus: dict[str, _wire.QpuRecord] = {}
        self._server_version: str | None = None
        self._opened = False

    def __repr__(self) -> str:
        return (
            f"OqcSdk(url={self.url!r}, dialect={self.dialect.value}, opened={self._opened}, "
            f"default_qpu={self._default_qpu_id!r})"
        )

    # -- lifecycle -----------------------------------------------------------------------------
    async def __aenter__(self) -> OqcSdk:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> OqcSdk:
        """Health check, login, QPU discovery. Raises instead of half-initialising."""
        response = await self._transport.send(self.api.health())
        self._server_version = _wire.parse_version(response.json())
        # The catalogue request is authenticated: with email+password it performs the login.
        await self.list_qpus()
        active = [qpu for qpu in self._qpus.values() if qpu.active]
        if not active:
            raise NoActiveQpuError(f"{self.url} reports no active QPU")
        if self._default_qpu_id is None and len(active) == 1:
            self._default_qpu_id = active[0].id
        self._opened = True
        return self

    async def close(self) -> None:
        """Close the connection pool of the current trio run. Safe if never opened."""
        self._opened = False
        await self._transport.aclose()

    @property
    def server_version(self) -> str | None:
        """The version the server reported at ``open()``."""
        return self._server_version

    def statistics(self) -> Any:
        """Transport counters: requests per endpoint, retries, rate waits, re-logins."""
        return self._transport.statistics()

    # -- QPUs ----------------------------------------------------------------------------------
    @property
    def default_qpu_id(self) -> str | None:
        """The QPU used when a call names none."""
        return self._default_qpu_id

    def set_default_qpu(self, qpu_id: str) -> None:
        """Choose the default QPU (checked against the catalogue once it is known)."""
        if self._qpus and qpu_id not in self._qpus:
            raise UnknownQpuError(f"unknown QPU {qpu_id!r}; known: {sorted(self._qpus)}")
        self._default_qpu_id = qpu_id

    def _qpu(self, qpu_id: str | None) -> str:
        qpu = qpu_id or self._default_qpu_id
        if qpu is None:
            raise ValueError(
                "no qpu_id given and no default QPU: pass qpu_id= or call sdk.set_default_qpu()"
            )
        return qpu

    async def list_qpus(self) -> Any:
        """Active QPU records (legacy, verbatim) or the v4 ``/qpus`` answer, verbatim."""
        response = await self._transport.send(self.api.list_qpus())
        payload = response.json()
        records = _wire.parse_qpus(payload, self.dialect)
        self._qpus = {record.id: record for record in records}
        if self.dialect is _wire.Dialect.V4:
            return payload
        return [dict(record.raw) for record in records if record.active]

    def _task_base(self, qpu_id: str) -> str | None:
        if self.dialect is _wire.Dialect.V4:
            return None
        record = self._qpus.get(qpu_id)
        if record is None:
            if not self._qpus:
                raise NotOpenError("the QPU catalogue is unknown: await sdk.open() first")
            raise UnknownQpuError(f"unknown QPU {qpu_id!r}; known: {sorted(self._qpus)}")
        return record.url

    async def get_features(self, qpu_id: str | None = None) -> Any:
        """The QPU's feature set (max shots, qubits, gate set...)."""
        response = await self._transport.send(self.api.features(self._qpu(qpu_id)))
        return _wire.parse_features(response.json(), self.dialect)

    async def get_system_status(self, qpu_id: str | None = None) -> Any:
        """Monitoring status of one QPU, or (legacy, no id) of every distinct QPU URL."""
        if qpu_id is not None or self.dialect is _wire.Dialect.V4:
            qpu = self._qpu(qpu_id)
            if self.dialect is _wire.Dialect.LEGACY and qpu not in self._qpus:
                return []
            base = self._task_base(qpu)
            return (await self._transport.send(self.api.system_status(qpu, base))).json()
        urls = sorted({q.url for q in self._qpus.values() if q.active and q.url})
        docs = [
            (await self._transport.send(self.api.system_status("", url))).json() for url in urls
        ]
        return docs[0] if len(docs) == 1 else docs

    async def get_calibration(
        self, qpu_id: str | None = None, date_filter: dt.date | dt.datetime | str | None = None
    ) -> Any:
        """Calibration document, optionally of one day (date, datetime or 'YYYY-MM-DD')."""
        qpu = self._qpu(qpu_id)
        request = self.api.calibration(qpu, self._task_base(qpu), _as_date(date_filter))
        payload = (await self._transport.send(request)).json()
        if self.dialect is _wire.Dialect.V4 and isinstance(payload, dict) and "data" in payload:
            return payload["data"]
        return payload

    async def get_next_window(self, qpu_id: str | None = None) -> dt.datetime | None:
        """Start of the QPU's next execution window (aware UTC), or None.

        The official SDK returns a naive datetime; ours is timezone-aware. v4 has no windows
        endpoint: ``NotImplementedError``, as in the official SDK.
        """
        if self.dialect is _wire.Dialect.V4:
            raise NotImplementedError("execution windows are not available in the v4 API")
        qpu = self._qpu(qpu_id)
        response = await self._transport.send(self.api.next_window(self._task_base(qpu)))
        return _wire.parse_next_window(response.json())

    # -- jobs ----------------------------------------------------------------------------------
    def create_job(
        self,
        *,
        program: str | Sequence[str],
        qpu_id: str | Sequence[str] | None = None,
        config: Any = None,
        fetch_diagnostics: bool = False,
        tag: str | None = None,
    ) -> Job | CompositeJob:
        """A :class:`Job` for scalars; a :class:`CompositeJob` of every combination if any of
        ``program``, ``qpu_id`` or ``config`` is a list (program outermost, then QPU, then
        config). No I/O."""
        programs, qpus, configs = _listify(program), _listify(qpu_id), _listify(config)
        for name, values in (("program", programs), ("qpu_id", qpus), ("config", configs)):
            if not values:
                raise ValueError(f"create_job: {name} is an empty list")
        for value in programs:
            if not isinstance(value, str):
                raise TypeError(f"create_job: program must be str, got {type(value).__name__}")
        for value in qpus:
            if value is not None and not isinstance(value, str):
                # e.g. a numpy array, which would otherwise become its repr as a QPU id
                raise TypeError(
                    "create_job: qpu_id must be str or a list or tuple of str, "
                    f"got {type(value).__name__}"
                )
        jobs = [
            Job(
                str(prog),
                str(self._qpu(qpu)),
                cfg,
                tag=tag,
                fetch_diagnostics=fetch_diagnostics,
                _client=self,
            )
            for prog, qpu, cfg in itertools.product(programs, qpus, configs)
        ]
        if not any(isinstance(v, (list, tuple)) for v in (program, qpu_id, config)):
            return jobs[0]
        return CompositeJob(jobs)

    def from_snapshot(self, snapshot: Any) -> Job | CompositeJob:
        """Rebuild a Job or CompositeJob bound to this SDK from a snapshot model."""
        from ._snapshots import from_snapshot

        return from_snapshot(snapshot, self)

    def load(self, path: str | os.PathLike[str]) -> Job | CompositeJob:
        """Load a file written by ``save()`` (ours or the official SDK's)."""
        from .job_snapshot import load_snapshot

        return self.from_snapshot(load_snapshot(path))

    def stream(
        self, *, max_in_flight: int = 1000, on_reserved: Any = None
    ) -> AbstractAsyncContextManager[JobStream]:
        """A streaming runner in the caller's task: ``async with sdk.stream() as stream``.

        Send jobs with ``await stream.send(job)``, close with ``await stream.close_input()``,
        and ``async for job in stream`` receives each job as soon as it is settled. Not in the
        official SDK.
        """
        return open_stream(self._runtime(), max_in_flight=max_in_flight, on_reserved=on_reserved)

    def _runtime(self) -> Runtime:
        return Runtime(
            send=self._transport.send,
            api=self.api,
            task_base=self._task_base,
            policy=self.poll_policy,
            max_body_bytes=_wire.MAX_REQUEST_BYTES - _HEADER_ALLOWANCE,
            submit_concurrency=self._submit_concurrency,
        )
