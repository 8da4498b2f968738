"""The emulator's ASGI app: every route of the QCaaS contract, in both dialects at once.

* Legacy (v3): ``/admin/version``, ``/admin/login``, ``/admin/qpu``... at the base URL, and
  the task, monitoring and window routes at each QPU's ``url``. With ``qpu_paths`` (the
  default) a QPU's url is ``{base}/qpu/{short}``; the same routes also answer at the base
  URL, so any client that ignores the per-QPU url still works.
* v4 gateway: ``/healthz``, ``/qpus``, ``/qpus/{id}/features|status|benchmarks[/search]`` and
  the same ``/tasks...`` and ``/monitoring...`` routes relative to the base URL.
  ``POST /tasks`` tells the dialects apart by its body.
* Emulator administration (admin token only, never counted nor faulted):
  ``GET /admin/emulator/counters``, ``POST /admin/emulator/reset-counters``,
  ``GET|POST|DELETE /admin/emulator/faults`` (list, add, clear fault rules) and
  ``POST /admin/emulator/restart`` (``{"downtime_s": 0.5}``).

Every success is 200 with JSON; every error carries ``{"response": {"errors": [...]}}``.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import trio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from . import bodies, catalogue
from .asgi import (
    BodyLimitMiddleware,
    Handler,
    JsonResponse,
    ServerHooks,
    endpoint,
    error_response,
)
from .bodies import RequestRejected, clip, parse_json, require_object, short_repr, text_field
from .config import EmulatorConfig, QpuSpec
from .faults import FaultInjector, parse_rule
from .scheduler import Scheduler
from .state import EmulatorState, User
from .validate import ConfigError
from .windows import Window

__all__ = ["TASK_FIELDS", "build_app", "create_app", "emulator_version"]

#: Per-field task endpoints and the key each answers with.
TASK_FIELDS = {
    "status": "status",
    "results": "results",
    "error": "task_error",
    "metadata": "metadata",
    "timings": "timings",
    "execution_metadata": "execution_metadata",
}
_MAX_SEARCH_DAYS = 366


def emulator_version() -> str:
    """The installed oqc-trio version (what ``/admin/version`` and ``/healthz`` report)."""
    try:
        return importlib.metadata.version("oqc-trio")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


async def _json(request: Request) -> Any:
    return parse_json(await request.body())


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.strip().isdigit()) or not 1 <= int(raw) <= maximum:
        raise RequestRejected(f"'{name}' must be an integer between 1 and {maximum}")
    return int(raw)


class _Routes:
    """The handlers, bound to one state and scheduler."""

    def __init__(self, state: EmulatorState, scheduler: Scheduler, hooks: ServerHooks) -> None:
        self.state = state
        self.scheduler = scheduler
        self.hooks = hooks
        self.version = emulator_version()
        #: Every counted route, as fault rules name them (filled by _routes).
        self.labels: list[str] = []

    # -- helpers -----------------------------------------------------------------------------
    def _base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def qpu_url(self, base: str, spec: QpuSpec) -> str:
        """Where a QPU's task endpoints live for a client that reached us at ``base``."""
        return f"{base}/qpu/{spec.short}" if self.state.config.qpu_paths else base

    def _path_qpu(self, request: Request) -> QpuSpec | None:
        """The QPU named by a ``/qpu/{short}`` prefix, if the request came through one."""
        short = request.path_params.get("short")
        if short is None:
            return None
        for spec in self.state.config.qpus:
            if spec.short == short:
                return spec
        raise RequestRejected(f"unknown QPU path /qpu/{short_repr(short)}", 404)

    def _scope_qpus(self, request: Request) -> list[QpuSpec]:
        """QPUs a monitoring/window request is about: ``?qpu_id=``, else the path's QPU,
        else all of them."""
        qpu_id = request.query_params.get("qpu_id")
        if qpu_id:
            return [self.state.qpu(qpu_id)]
        path_qpu = self._path_qpu(request)
        return [path_qpu] if path_qpu is not None else list(self.state.config.qpus)

    def _today(self) -> dt.date:
        return self.state.clock().date()

    def _calibration_day(self, spec: QpuSpec, day: dt.date) -> dict[str, Any]:
        if day > self._today():
            raise RequestRejected(
                f"no calibration of {spec.id} for {day.isoformat()}: that day is in the future",
                404,
            )
        doc = catalogue.calibration_on(spec, day)
        if doc is None:
            first = spec.calibrations[0].date.isoformat()
            raise RequestRejected(
                f"no calibration of {spec.id} on or before {day.isoformat()} "
                f"(the first is dated {first})",
                404,
            )
        return doc

    # -- health, login -----------------------------------------------------------------------
    async def version_(self, request: Request, user: User | None) -> Any:
        return {"version": self.version, "service": "oqc-emulator"}

    async def healthz(self, request: Request, user: User | None) -> Any:
        return {"status": "ok", "version": self.version, "service": "oqc-emulator"}

    async def login(self, request: Request, user: User | None) -> Any:
        data = require_object(await _json(request), "POST /admin/login")
        email = text_field(data, "email", "POST /admin/login") or ""
        password = text_field(data, "password", "POST /admin/login") or ""
        found = self.state.login(email, password)
        doc: dict[str, Any] = {"id": found.id, "email": found.email}
        if _flag(request.query_params.get("include_auth_token")):
            doc["authentication_token"] = found.login_token
        return {"response": {"user": doc}}

    async def logout(self, request: Request, user: User | None) -> Any:
        return {"response": {}}

    # -- users and tokens (section 3.7) ------------------------------------------------------
    async def find_users(self, request: Request, user: User | None) -> Any:
        assert user is not None
        found = self.state.find_users(user, request.query_params.get("q", ""))
        return {"total": len(found), "items": [u.doc() for u in found]}

    async def create_user(self, request: Request, user: User | None) -> Any:
        assert user is not None
        where = "POST /admin/users"
        data = require_object(await _json(request), where)
        created = self.state.create_user(
            user,
            email=text_field(data, "email", where) or "",
            password=text_field(data, "password", where) or "",
            first_name=text_field(data, "first_name", where, required=False) or "",
            last_name=text_field(data, "last_name", where, required=False) or "",
        )
        return created.doc()

    async def get_user(self, request: Request, user: User | None) -> Any:
        assert user is not None
        return self.state.user_of(user, request.path_params["user_id"]).doc()

    async def update_password(self, request: Request, user: User | None) -> Any:
        assert user is not None
        where = "POST /admin/users/{id}/update_password"
        data = require_object(await _json(request), where)
        self.state.update_password(
            user,
            request.path_params["user_id"],
            text_field(data, "password", where) or "",
            text_field(data, "password_confirm", where) or "",
        )
        return {"response": {}}

    async def password_reset(self, request: Request, user: User | None) -> Any:
        # The official client sends a form body under a JSON content type: never parse it.
        return {"response": {}}

    async def token_info(self, request: Request, user: User | None) -> Any:
        assert user is not None
        return self.state.token_of(user, request.path_params["token"]).doc()

    async def new_token(self, request: Request, user: User | None) -> Any:
        assert user is not None
        where = "POST /admin/users/current_user/auth_tokens"
        data = require_object(await _json(request), where)
        raw = text_field(data, "expires_at", where, required=False)
        expires = (
            self.state.clock() + dt.timedelta(days=30)
            if raw is None
            else bodies.parse_datetime(raw, f"{where}: expires_at")
        )
        return self.state.create_token(user, expires).doc()

    async def delete_token(self, request: Request, user: User | None) -> Any:
        assert user is not None
        return {"token": self.state.delete_token(user, request.path_params["token"]).value}

    # -- catalogue ---------------------------------------------------------------------------
    async def legacy_qpus(self, request: Request, user: User | None) -> Any:
        per_page = _int_param(request, "per_page", 1000, 10_000)
        page = _int_param(request, "page", 1, 1_000_000)
        base = self._base(request)
        specs = self.state.config.qpus
        chosen = specs[(page - 1) * per_page : page * per_page]
        return {
            "items": [catalogue.qpu_record(q, self.qpu_url(base, q)) for q in chosen],
            "total": len(specs),
            "page": page,
            "per_page": per_page,
        }

    async def legacy_qpu(self, request: Request, user: User | None) -> Any:
        spec = self.state.qpu(request.path_params["qpu_id"])
        return catalogue.qpu_record(spec, self.qpu_url(self._base(request), spec))

    async def v4_qpus(self, request: Request, user: User | None) -> Any:
        return [catalogue.qpu_record(q, None) for q in self.state.config.qpus]

    async def v4_features(self, request: Request, user: User | None) -> Any:
        spec = self.state.qpu(request.path_params["qpu_id"])
        return {"qpu_id": spec.id, "data": catalogue.features(spec)}

    async def v4_status(self, request: Request, user: User | None) -> Any:
        return self.state.status_doc(self.state.qpu(request.path_params["qpu_id"]))

    async def v4_benchmarks(self, request: Request, user: User | None) -> Any:
        spec = self.state.qpu(request.path_params["qpu_id"])
        return {"qpu_id": spec.id, "data": self._calibration_day(spec, self._today())}

    async def v4_benchmark_search(self, request: Request, user: User | None) -> Any:
        """``data`` lists the calibrations in force within ``[start_date, end_date]``: one
        per day for an ideal QPU, each configured calibration once otherwise."""
        spec = self.state.qpu(request.path_params["qpu_id"])
        params = request.query_params
        start_raw, end_raw = params.get("start_date"), params.get("end_date")
        start = self._today() if not start_raw else bodies.parse_date(start_raw, "start_date")
        end = start if not end_raw else bodies.parse_date(end_raw, "end_date")
        if end < start:
            raise RequestRejected("end_date is before start_date")
        if (end - start).days >= _MAX_SEARCH_DAYS:
            raise RequestRejected(f"at most {_MAX_SEARCH_DAYS} days per search")
        end = min(end, self._today())
        return {"qpu_id": spec.id, "data": catalogue.calibrations_between(spec, start, end)}

    # -- tasks -------------------------------------------------------------------------------
    async def create_ids(self, request: Request, user: User | None) -> Any:
        assert user is not None
        self._path_qpu(request)
        wanted = bodies.parse_create_ids(await _json(request))
        ids = [t.id for t in self.state.create_ids(user, wanted.wanted)]
        return {"tasks": ids} if wanted.v4 else ids

    async def submit(self, request: Request, user: User | None) -> Any:
        assert user is not None
        self._path_qpu(request)
        submissions = bodies.parse_submit(await _json(request))
        ids, queued = self.state.submit(user, submissions)
        self.scheduler.enqueue(queued)
        return [{"task_id": task_id} for task_id in ids]

    async def cancel_many(self, request: Request, user: User | None) -> Any:
        assert user is not None
        self._path_qpu(request)
        task_ids = bodies.parse_cancel(await _json(request))
        self.scheduler.stop(self.state.cancel(user, task_ids))
        return "OK"

    async def summaries(self, request: Request, user: User | None) -> Any:
        assert user is not None
        params = request.query_params
        start = params.get("start_date")
        end = params.get("end_date")
        found = self.state.summaries(
            user,
            None if not start else bodies.parse_datetime(start, "start_date"),
            None if not end else bodies.parse_datetime(end, "end_date"),
        )
        path_qpu = self._path_qpu(request)
        wanted = params.get("qpu_id") or (path_qpu.id if path_qpu else None)
        return [s for s in found if wanted is None or s["qpu_id"] == wanted]

    async def all_info(self, request: Request, user: User | None) -> Any:
        assert user is not None
        self._path_qpu(request)
        return self.state.task(user, request.path_params["task_id"]).all_info()

    def task_field(self, field: str) -> Handler:
        """The handler of ``GET /tasks/{id}/{field}``."""
        key = TASK_FIELDS[field]

        async def handler(request: Request, user: User | None) -> Any:
            assert user is not None
            self._path_qpu(request)
            info = self.state.task(user, request.path_params["task_id"]).all_info()
            return {key: info[key]}

        return handler

    # -- monitoring and windows --------------------------------------------------------------
    async def statuses(self, request: Request, user: User | None) -> Any:
        return [self.state.status_doc(q) for q in self._scope_qpus(request)]

    async def calibrations(self, request: Request, user: User | None) -> Any:
        qpus = self._scope_qpus(request)
        if len(qpus) != 1:
            raise RequestRejected("'qpu_id' is required: this URL serves several QPUs")
        raw = request.query_params.get("date")
        day = self._today() if not raw else bodies.parse_date(raw, "date")
        return self._calibration_day(qpus[0], day)

    async def task_wait_time(self, request: Request, user: User | None) -> Any:
        assert user is not None
        where = "POST /monitoring/task_wait_time"
        task_ids = bodies.parse_id_list(await _json(request), "task_ids", where)
        return {"task_wait_times": self.state.task_wait_times(user, task_ids)}

    async def qpu_wait_time(self, request: Request, user: User | None) -> Any:
        where = "POST /monitoring/qpu_wait_time"
        targets = bodies.parse_id_list(await _json(request), "targets", where)
        return {"qpu_wait_times": self.state.qpu_wait_times(targets)}

    async def next_window(self, request: Request, user: User | None) -> Any:
        qpus = self._scope_qpus(request)
        return catalogue.next_window(qpus, self.state.windows, self.state.clock())

    async def window_history(self, request: Request, user: User | None) -> Any:
        qpus = self._scope_qpus(request)
        latest = _flag(request.query_params.get("latest"))
        return catalogue.window_history(qpus, self.state.windows, self.state.clock(), latest=latest)

    async def one_off_window(self, request: Request, user: User | None) -> Any:
        where = "POST /windows/one-off-window"
        data = require_object(await _json(request), where)
        spec = self.state.qpu(text_field(data, "qpu_id", where) or "")
        start = bodies.parse_datetime(text_field(data, "start_time", where) or "", "start_time")
        end = bodies.parse_datetime(text_field(data, "end_time", where) or "", "end_time")
        if end <= start:
            raise RequestRejected(f"{where}: end_time must be after start_time")
        window = Window(start, end)
        self.state.add_window(spec.id, window)
        return catalogue.window_doc(spec.id, window)

    # -- emulator administration -------------------------------------------------------------
    async def counters(self, request: Request, user: User | None) -> Any:
        return self.state.counters()

    async def reset_counters(self, request: Request, user: User | None) -> Any:
        self.state.reset_counters()
        return self.state.counters()

    async def add_faults(self, request: Request, user: User | None) -> Any:
        """A rule object (see :mod:`oqc_trio.emulator.faults`; the earlier ``{"route",
        "status", "times", "message"}`` works), or ``{"rules": [...], "replace": false}``.
        Route patterns matching no endpoint are refused (400)."""
        where = "POST /admin/emulator/faults"
        data = require_object(await _json(request), where)
        items = data.get("rules") if "rules" in data else [data]
        replace = data.get("replace", False) if "rules" in data else False
        if not isinstance(items, list) or not isinstance(replace, bool):
            raise RequestRejected(f"{where}: 'rules' must be an array, 'replace' a boolean")
        try:
            rules = [parse_rule(item, f"rules[{i}]") for i, item in enumerate(items)]
        except ConfigError as exc:
            raise RequestRejected(f"{where}: {exc}") from None
        for rule in rules:
            unmatched = FaultInjector.unmatched(rule, self.labels)
            if unmatched:
                raise RequestRejected(
                    f"{where}: route pattern {unmatched[0]!r} matches no endpoint "
                    "(patterns look like 'POST /tasks/submit' or 'GET /tasks/*/all_info')"
                )
        injector = self.state.injector
        if replace:
            injector.clear()
        for rule in rules:
            injector.add(rule)
        return {"faults": injector.docs()}

    async def list_faults(self, request: Request, user: User | None) -> Any:
        return {"faults": self.state.injector.docs(), "seed": self.state.injector.seed}

    async def clear_faults(self, request: Request, user: User | None) -> Any:
        self.state.injector.clear()
        return {"faults": []}

    async def restart(self, request: Request, user: User | None) -> Any:
        """``{"downtime_s": 0.0}``: restart the server (in-memory state is lost; with a
        database it is read back), once this answer is sent."""
        if self.hooks.restart is None:
            raise RequestRejected("this server cannot restart itself", 501)
        body = await request.body()
        data = (
            require_object(parse_json(body), "POST /admin/emulator/restart") if body.strip() else {}
        )
        downtime = data.get("downtime_s", 0.0)
        if (
            isinstance(downtime, bool)
            or not isinstance(downtime, int | float)
            or not 0 <= downtime <= 3600
        ):
            raise RequestRejected("'downtime_s' must be a number of seconds in [0, 3600]")
        restart = self.hooks.restart

        async def after_answering() -> None:
            restart(float(downtime))

        return JsonResponse(
            {"restarting": True, "downtime_s": float(downtime)},
            background=BackgroundTask(after_answering),
        )


#: Routes whose changes are stored before they answer (with a database).
_STORING = {
    "POST /tasks",
    "POST /tasks/submit",
    "POST /tasks/cancel_many",
    "POST /admin/login",
    "POST /admin/users",
    "POST /admin/users/current_user/auth_tokens",
    "POST /admin/users/{user_id}/update_password",
    "DELETE /auth_tokens/{token}",
    "POST /windows/one-off-window",
}


def _routes(api: _Routes, state: EmulatorState) -> list[BaseRoute]:
    def route(
        method: str, path: str, handler: Handler, *, auth: bool = True, admin: bool = False
    ) -> Route:
        label = f"{method} {path}"
        counted = not path.startswith("/admin/emulator/")
        if counted and label not in api.labels:
            api.labels.append(label)
        wrapped = endpoint(
            state,
            label,
            handler,
            hooks=api.hooks,
            auth=auth,
            admin=admin,
            counted=counted,
            stores=label in _STORING,
        )
        return Route(path, wrapped, methods=[method])

    qpu_routes = [
        route("POST", "/tasks", api.create_ids),
        route("GET", "/tasks", api.summaries),
        route("POST", "/tasks/submit", api.submit),
        route("POST", "/tasks/cancel_many", api.cancel_many),
        route("GET", "/tasks/{task_id}/all_info", api.all_info),
        *(
            route("GET", f"/tasks/{{task_id}}/{field}", api.task_field(field))
            for field in TASK_FIELDS
        ),
        route("GET", "/monitoring/statuses", api.statuses),
        route("GET", "/monitoring/calibrations", api.calibrations),
        route("POST", "/monitoring/task_wait_time", api.task_wait_time),
        route("POST", "/monitoring/qpu_wait_time", api.qpu_wait_time),
        route("GET", "/windows/next", api.next_window),
        route("GET", "/windows/history", api.window_history),
    ]
    return [
        route("GET", "/admin/version", api.version_, auth=False),
        route("GET", "/healthz", api.healthz, auth=False),
        route("POST", "/admin/login", api.login, auth=False),
        route("POST", "/admin/logout", api.logout, auth=False),
        route("GET", "/admin/qpu", api.legacy_qpus),
        route("GET", "/admin/qpu/{qpu_id}", api.legacy_qpu),
        route("GET", "/admin/users", api.find_users),
        route("POST", "/admin/users", api.create_user, admin=True),
        route("GET", "/admin/users/{user_id}", api.get_user),
        route("POST", "/admin/users/current_user/auth_tokens", api.new_token),
        route("POST", "/admin/users/{user_id}/update_password", api.update_password),
        route("GET", "/admin/auth_tokens/{token}", api.token_info),
        route("DELETE", "/auth_tokens/{token}", api.delete_token),
        route("POST", "/password_reset", api.password_reset, auth=False),
        route("POST", "/windows/one-off-window", api.one_off_window, admin=True),
        route("GET", "/qpus", api.v4_qpus),
        route("GET", "/qpus/{qpu_id}/features", api.v4_features),
        route("GET", "/qpus/{qpu_id}/status", api.v4_status),
        route("GET", "/qpus/{qpu_id}/benchmarks", api.v4_benchmarks),
        route("GET", "/qpus/{qpu_id}/benchmarks/search", api.v4_benchmark_search),
        route("GET", "/admin/emulator/counters", api.counters, admin=True),
        route("POST", "/admin/emulator/reset-counters", api.reset_counters, admin=True),
        route("GET", "/admin/emulator/faults", api.list_faults, admin=True),
        route("POST", "/admin/emulator/faults", api.add_faults, admin=True),
        route("DELETE", "/admin/emulator/faults", api.clear_faults, admin=True),
        route("POST", "/admin/emulator/restart", api.restart, admin=True),
        *qpu_routes,
        Mount("/qpu/{short}", routes=qpu_routes),
    ]


def build_app(
    state: EmulatorState,
    scheduler: Scheduler,
    *,
    hooks: ServerHooks | None = None,
    lifespan: Callable[[Starlette], Any] | None = None,
) -> Starlette:
    """The app over an existing state and scheduler (the caller runs the scheduler);
    ``hooks`` connect it to the server (dropping connections, restarts, the store)."""
    api = _Routes(state, scheduler, hooks or ServerHooks())

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            state.count_request("unmatched", faults=False)
            message = f"no such endpoint: {request.method} {clip(request.url.path)}"
        elif exc.status_code == 405:
            state.count_request("unmatched", faults=False)
            message = f"method {request.method} not allowed on {clip(request.url.path)}"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, headers=exc.headers)

    app = Starlette(
        routes=_routes(api, state),
        middleware=[Middleware(BodyLimitMiddleware, max_bytes=state.config.max_request_bytes)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    # A redirect has no JSON body, and the contract knows no trailing-slash paths: 404.
    app.router.redirect_slashes = False
    return app


def create_app(
    config: EmulatorConfig | None = None,
    *,
    executor: Literal["aer", "instant"] = "aer",
) -> Starlette:
    """An ASGI app serving a fresh emulator, for any trio-based ASGI server (hypercorn with
    ``--worker-class trio``). The executor and the QPU queues start in the app's lifespan;
    the state is at ``app.state.emulator``. Without :func:`open_emulator`'s server around
    it, the app cannot restart, keeps no database, and an injected ``drop`` fault raises
    from the app (most servers then answer 500 and close the connection)."""
    from .executor import open_executor

    cfg = config if config is not None else EmulatorConfig.default()
    state = EmulatorState(cfg)
    scheduler = Scheduler(state)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            open_executor(
                executor, workers=cfg.executor_workers, task_timeout_s=cfg.task_timeout_s
            ) as runner,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(scheduler.run, runner)
            yield
            nursery.cancel_scope.cancel()

    app = build_app(state, scheduler, lifespan=lifespan)
    app.state.emulator = state
    return app
