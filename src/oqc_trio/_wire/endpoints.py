"""Endpoint tables of both dialects: each call of the contract as a :class:`Request` value.

Nothing here performs I/O; ``_transport.py`` sends what these builders describe. ``label`` is
a stable endpoint name used for counting requests per endpoint in benchmarks and tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import attrs

from .dialect import Dialect
from .payload import encode

__all__ = ["Api", "Request"]

_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})


@attrs.frozen
class Request:
    """One HTTP request, fully described: method, absolute URL, query, exact body bytes."""

    method: str
    url: str
    label: str
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    authenticated: bool = True

    @property
    def idempotent(self) -> bool:
        """True for GET/PUT/DELETE: safe to retry blindly. POST never is."""
        return self.method in _IDEMPOTENT

    @property
    def path(self) -> str:
        """The URL path, for messages (never the query string, which may hold secrets)."""
        rest = self.url.split("://", 1)[-1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"


def _json_post(url: str, label: str, payload: object, *, authenticated: bool = True) -> Request:
    return Request("POST", url, label, body=encode(payload), authenticated=authenticated)


@attrs.frozen
class Api:
    """Request builders for one server in one dialect.

    ``task_base`` arguments name where a QPU's task endpoints live: its ``url`` record field in
    the legacy dialect; ignored in v4 (everything is under ``base_url``).
    """

    base_url: str = attrs.field(converter=lambda u: u.rstrip("/"))
    dialect: Dialect = Dialect.LEGACY

    @property
    def v4(self) -> bool:
        """True in the v4 gateway dialect."""
        return self.dialect is Dialect.V4

    def _tasks(self, task_base: str | None) -> str:
        if self.v4 or not task_base:
            return self.base_url
        return task_base.rstrip("/")

    # -- health, login, catalogue ------------------------------------------------------------
    def health(self) -> Request:
        """``GET /admin/version`` (legacy) or ``GET /healthz`` (v4), unauthenticated."""
        path = "/healthz" if self.v4 else "/admin/version"
        return Request("GET", self.base_url + path, "health", authenticated=False)

    def logout(self) -> Request:
        """``POST /admin/logout`` with ``{}`` (the official login flow starts with it)."""
        return _json_post(self.base_url + "/admin/logout", "logout", {}, authenticated=False)

    def login(self, email: str, password: str) -> Request:
        """``POST /admin/login?include_auth_token=true`` with the credentials in the body."""
        return Request(
            "POST",
            self.base_url + "/admin/login",
            "login",
            params=(("include_auth_token", "true"),),
            body=encode({"email": email, "password": password}),
            authenticated=False,
        )

    def list_qpus(self) -> Request:
        """``GET /admin/qpu?per_page=1000`` (legacy) or ``GET /qpus`` (v4)."""
        if self.v4:
            return Request("GET", self.base_url + "/qpus", "qpus")
        return Request("GET", self.base_url + "/admin/qpu", "qpus", params=(("per_page", "1000"),))

    def features(self, qpu_id: str) -> Request:
        """QPU feature set: ``/admin/qpu/{id}`` (legacy) or ``/qpus/{id}/features`` (v4)."""
        path = f"/qpus/{qpu_id}/features" if self.v4 else f"/admin/qpu/{qpu_id}"
        return Request("GET", self.base_url + path, "features")

    def system_status(self, qpu_id: str, task_base: str | None) -> Request:
        """``/monitoring/statuses`` at the QPU URL (legacy) or ``/qpus/{id}/status`` (v4)."""
        if self.v4:
            return Request("GET", f"{self.base_url}/qpus/{qpu_id}/status", "status")
        return Request("GET", self._tasks(task_base) + "/monitoring/statuses", "status")

    def calibration(
        self, qpu_id: str, task_base: str | None, date: dt.date | None = None
    ) -> Request:
        """Calibration document; with a date, that day's (v4: ``benchmarks/search``)."""
        if self.v4:
            url = f"{self.base_url}/qpus/{qpu_id}/benchmarks"
            if date is None:
                return Request("GET", url, "calibration")
            day = date.isoformat()
            return Request(
                "GET",
                url + "/search",
                "calibration",
                params=(("start_date", f"{day}T00:00:00"), ("end_date", f"{day}T23:59:59")),
            )
        params: tuple[tuple[str, str], ...] = (("qpu_id", qpu_id),)
        if date is not None:
            params += (("date", date.isoformat()),)
        return Request(
            "GET", self._tasks(task_base) + "/monitoring/calibrations", "calibration", params
        )

    def next_window(self, task_base: str | None) -> Request:
        """``GET /windows/next`` at the QPU URL (legacy only)."""
        return Request("GET", self._tasks(task_base) + "/windows/next", "next_window")

    def window_history(self, task_base: str | None, *, latest: bool = True) -> Request:
        """``GET /windows/history[?latest=true]`` at the QPU URL (legacy only)."""
        params = (("latest", "true"),) if latest else ()
        return Request("GET", self._tasks(task_base) + "/windows/history", "window_history", params)

    # -- tasks -------------------------------------------------------------------------------
    def create_task_ids(
        self, qpu_id: str, task_base: str | None, count: int, tag: str | None = None
    ) -> Request:
        """Step 1 of a batch: reserve ``count`` task IDs (body differs per dialect)."""
        if count < 1:
            raise ValueError("count must be >= 1")
        url = self._tasks(task_base) + "/tasks"
        if self.v4:
            payload: object = {"tasks": [{"qpu_id": qpu_id, "tag": tag}] * count}
        else:
            payload = {"qpu_id": qpu_id, "task_count": count, "tag": tag}
        return _json_post(url, "create_ids", payload)

    def submit(self, task_base: str | None, body: bytes) -> Request:
        """``POST /tasks/submit`` with an exact body from :func:`payload.submit_body`."""
        return Request("POST", self._tasks(task_base) + "/tasks/submit", "submit", body=body)

    def all_info(self, task_base: str | None, task_id: str) -> Request:
        """``GET /tasks/{id}/all_info``: everything about one task (what polling reads)."""
        return Request("GET", f"{self._tasks(task_base)}/tasks/{task_id}/all_info", "all_info")

    def task_field(self, task_base: str | None, task_id: str, field: str) -> Request:
        """Per-field task endpoints: status, results, error, metadata, timings,
        execution_metadata."""
        if field not in {"status", "results", "error", "metadata", "timings", "execution_metadata"}:
            raise ValueError(f"unknown task field endpoint {field!r}")
        return Request("GET", f"{self._tasks(task_base)}/tasks/{task_id}/{field}", field)

    def cancel_many(self, task_base: str | None, task_ids: Sequence[str]) -> Request:
        """``POST /tasks/cancel_many`` with every ID in one body."""
        return _json_post(
            self._tasks(task_base) + "/tasks/cancel_many", "cancel_many", {"tasks": list(task_ids)}
        )

    def tasks_summary(
        self,
        task_base: str | None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> Request:
        """``GET /tasks?start_date=&end_date=`` (dates as proper query parameters)."""
        params: tuple[tuple[str, str], ...] = ()
        if start is not None:
            params += (("start_date", str(start)),)
        if end is not None:
            params += (("end_date", str(end)),)
        return Request("GET", self._tasks(task_base) + "/tasks", "tasks_summary", params)

    def task_wait_time(
        self, qpu_id: str, task_base: str | None, task_ids: Sequence[str]
    ) -> Request:
        """``POST /monitoring/task_wait_time`` for some tasks of one QPU."""
        return _json_post(
            self._tasks(task_base) + "/monitoring/task_wait_time",
            "task_wait_time",
            {"task_ids": list(task_ids), "qpu_id": qpu_id},
        )

    def qpu_wait_time(self, task_base: str | None, qpu_ids: Sequence[str]) -> Request:
        """``POST /monitoring/qpu_wait_time`` for some QPUs sharing one URL."""
        return _json_post(
            self._tasks(task_base) + "/monitoring/qpu_wait_time",
            "qpu_wait_time",
            {"targets": list(qpu_ids)},
        )
