"""Fault injection: rules saying which requests (or tasks) fail, how, and how often.

A rule has a ``kind``:

* ``status``: answer ``status`` (one code, or a list drawn from at random) with the
  contract's error body; 429 and 503 carry ``Retry-After: retry_after_s`` (default 1 s).
* ``drop``: close the connection without an answer.
* ``delay``: wait ``delay_s`` seconds, then answer normally.
* ``task_error``: a task (not a request) fails with ``error_code``/``message``.
* ``restart``: the server restarts (connections dropped, down for ``downtime_s``; its state
  survives only with ``--db``).

``phase = "after"`` makes ``status``, ``drop`` and ``delay`` act *after* the request was
handled (its effects are kept: a submission is recorded) rather than in its place. Aliases:
``accept_then_500`` (status 500 after), ``latency`` (delay before) and ``slow`` (delay
after, for answers that arrive past a client's timeout).

Which requests: ``routes``, shell-style patterns over ``"METHOD /path/template"`` such as
``"POST /tasks/submit"``, ``"GET /tasks/*/all_info"`` or ``"*"`` (the default: every route
but the emulator's own admin routes); ``qpus`` selects the tasks of ``task_error``. How
often, among the matching requests: the first ``after`` are spared; then each with
``probability``, or as ``sequence`` says (``"0010"``: only the third; with ``repeat`` the
third of every four), or every one; at most ``times`` injections in all.

Random draws come from a generator per rule seeded with the plan's ``seed`` and the rule's
position, so a run with the same requests in the same order sees the same faults.

Rules come from the TOML (``[faults]`` with ``seed`` and ``rules``), the command line
(``--fault KIND:key=value,...``, lists separated by ``|``, or a JSON object) and the admin
endpoint ``POST /admin/emulator/faults`` (a JSON object or ``{"rules": [...]}``).
"""

from __future__ import annotations

import fnmatch
import json
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from .validate import (
    ConfigError,
    bool_key,
    int_key,
    list_key,
    number_key,
    opt_int_key,
    opt_number_key,
    probability_key,
    reject_unknown,
    str_key,
    table,
)

__all__ = [
    "KINDS",
    "FaultInjector",
    "FaultPlan",
    "FaultRule",
    "parse_cli_fault",
    "parse_plan",
    "parse_rule",
]

Kind = Literal["status", "drop", "delay", "task_error", "restart"]
KINDS: tuple[Kind, ...] = ("status", "drop", "delay", "task_error", "restart")
_ALIASES: dict[str, dict[str, Any]] = {
    "accept_then_500": {"kind": "status", "status": 500, "phase": "after"},
    "latency": {"kind": "delay", "phase": "before"},
    "slow": {"kind": "delay", "phase": "after"},
}
_KEYS = {
    "kind",
    "routes",
    "route",
    "qpus",
    "probability",
    "sequence",
    "repeat",
    "after",
    "times",
    "status",
    "retry_after_s",
    "message",
    "delay_s",
    "phase",
    "error_code",
    "downtime_s",
}


@attrs.frozen
class FaultRule:
    """One validated fault rule (see the module docstring for the fields)."""

    kind: Kind
    routes: tuple[str, ...] = ("*",)
    qpus: tuple[str, ...] = ()
    probability: float | None = None
    sequence: tuple[bool, ...] = ()
    repeat: bool = False
    after: int = 0
    times: int | None = None
    status: tuple[int, ...] = (503,)
    retry_after_s: float | None = None
    message: str = "injected fault"
    delay_s: float = 0.0
    phase: Literal["before", "after"] = "before"
    error_code: int = 500
    downtime_s: float = 0.0

    @property
    def label(self) -> str:
        """A short name for counters: ``status``, ``drop``, ``delay``, ``task_error``,
        ``restart``, with ``-after`` for the after phase."""
        suffix = (
            "-after" if self.phase == "after" and self.kind in ("status", "drop", "delay") else ""
        )
        return f"{self.kind}{suffix}"

    def doc(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in attrs.asdict(self, recurse=False).items()
        }


@attrs.frozen
class FaultPlan:
    """The rules in force at start-up and the seed of their random draws."""

    seed: int = 0
    rules: tuple[FaultRule, ...] = ()


def _sequence(raw: Any, where: str) -> tuple[bool, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str) and raw and set(raw) <= {"0", "1"}:
        return tuple(c == "1" for c in raw)
    if (
        isinstance(raw, list)
        and raw
        and all(isinstance(v, bool) or (isinstance(v, int) and v in (0, 1)) for v in raw)
    ):
        return tuple(bool(v) for v in raw)
    raise ConfigError(f"{where}.sequence: expected a non-empty string of 0/1 or a list of 0/1")


def _strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.{key}: expected a non-empty list of strings")
    return tuple(value)


def _statuses(data: Mapping[str, Any], where: str) -> tuple[int, ...]:
    value = data.get("status", 503)
    values = value if isinstance(value, list) else [value]
    if not values or not all(
        isinstance(v, int) and not isinstance(v, bool) and 400 <= v <= 599 for v in values
    ):
        raise ConfigError(f"{where}.status: expected an HTTP error status (400-599) or a list")
    return tuple(values)


def parse_rule(raw: Any, where: str) -> FaultRule:
    """Validate one rule (a TOML table or a JSON object). A body without ``kind`` is a
    ``status`` rule, and ``route`` (one pattern) is accepted for ``routes``, so the earlier
    admin shape ``{"route", "status", "times", "message"}`` still works."""
    data = dict(table(raw, where))
    reject_unknown(data, _KEYS, where)
    kind = str_key(data, "kind", "status", where)
    if kind in _ALIASES:
        for key, value in _ALIASES[kind].items():
            if key == "kind" or key not in data:
                data[key] = value
        kind = data["kind"]
    if kind not in KINDS:
        names = ", ".join((*KINDS, *_ALIASES))
        raise ConfigError(f"{where}.kind: {kind!r} is not a fault kind (expected one of {names})")
    if "route" in data and "routes" in data:
        raise ConfigError(f"{where}: give routes or route, not both")
    routes = _strings(data, "routes", where) or _strings(data, "route", where) or ("*",)
    phase = str_key(data, "phase", "before", where)
    if phase not in ("before", "after"):
        raise ConfigError(f"{where}.phase: expected 'before' or 'after'")
    if phase == "after" and kind not in ("status", "drop", "delay"):
        raise ConfigError(f"{where}.phase: only status, drop and delay faults act after")
    probability = (
        None
        if data.get("probability") is None
        else probability_key(data, "probability", 1.0, where)
    )
    sequence = _sequence(data.get("sequence"), where)
    if probability is not None and sequence:
        raise ConfigError(f"{where}: give probability or sequence, not both")
    statuses = _statuses(data, where)
    retry_after = opt_number_key(data, "retry_after_s", minimum=0.0, where=where)
    if kind == "status" and retry_after is None and (429 in statuses or 503 in statuses):
        retry_after = 1.0
    return FaultRule(
        kind=kind,
        routes=routes,
        qpus=_strings(data, "qpus", where) or (),
        probability=probability,
        sequence=sequence,
        repeat=bool_key(data, "repeat", False, where),
        after=int_key(data, "after", 0, minimum=0, where=where),
        times=opt_int_key(data, "times", where, minimum=1),
        status=statuses,
        retry_after_s=retry_after,
        message=str_key(data, "message", "injected fault", where) or "injected fault",
        delay_s=number_key(data, "delay_s", 0.0, minimum=0.0, where=where),
        phase=phase,  # type: ignore[arg-type]
        error_code=int_key(data, "error_code", 500, minimum=-(2**31), where=where),
        downtime_s=number_key(data, "downtime_s", 0.0, minimum=0.0, where=where),
    )


def parse_plan(raw: Any, default_seed: int | None) -> FaultPlan:
    """The ``[faults]`` table: ``seed`` (default: the config's seed, else 0) and ``rules``."""
    if raw is None:
        return FaultPlan(seed=default_seed or 0)
    data = table(raw, "faults")
    reject_unknown(data, {"seed", "rules"}, "faults")
    seed = opt_int_key(data, "seed", "faults")
    rules = tuple(
        parse_rule(item, f"faults.rules[{i}]")
        for i, item in enumerate(list_key(data, "rules", "faults"))
    )
    return FaultPlan(seed=(default_seed or 0) if seed is None else seed, rules=rules)


def _cli_value(text: str) -> Any:
    if "|" in text:
        return [_cli_value(part) for part in text.split("|")]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_cli_fault(text: str) -> FaultRule:
    """``--fault`` syntax: ``KIND[:key=value,...]`` (lists as ``a|b``) or a JSON object.

    Examples: ``status:status=429|503,probability=0.1``; ``drop:probability=0.02``;
    ``accept_then_500:routes=POST /tasks/submit,times=1``; ``slow:delay_s=40``.
    """
    where = f"--fault {text!r}"
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return parse_rule(json.loads(stripped), where)
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{where}: invalid JSON: {exc}") from None
    kind, _, rest = stripped.partition(":")
    data: dict[str, Any] = {"kind": kind.strip()}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{where}: expected key=value, got {item!r}")
        key = key.strip()
        data[key] = value.strip() if key in ("message", "sequence") else _cli_value(value.strip())
        if key in ("routes", "route", "qpus") and isinstance(data[key], str):
            data[key] = [data[key]]
        if key == "sequence" and "|" in data[key]:
            data[key] = [int(v) for v in data[key].split("|") if v.strip().isdigit()]
    return parse_rule(data, where)


class _Armed:
    """A rule and its progress: requests matched, faults injected, its random generator."""

    def __init__(self, rule: FaultRule, rng: random.Random) -> None:
        self.rule = rule
        self.rng = rng
        self.matched = 0
        self.injected = 0

    def fires(self) -> bool:
        rule = self.rule
        n = self.matched
        self.matched += 1
        # Draw for every match, so that a rule's choices do not depend on other rules.
        draw = self.rng.random()
        if n < rule.after or (rule.times is not None and self.injected >= rule.times):
            return False
        if rule.sequence:
            k = n - rule.after
            if rule.repeat:
                k %= len(rule.sequence)
            return k < len(rule.sequence) and rule.sequence[k]
        return rule.probability is None or draw < rule.probability

    @property
    def spent(self) -> bool:
        rule = self.rule
        if rule.times is not None and self.injected >= rule.times:
            return True
        return (
            bool(rule.sequence)
            and not rule.repeat
            and self.matched >= rule.after + len(rule.sequence)
        )


class FaultInjector:
    """Decides, request by request and task by task, which fault (if any) applies."""

    def __init__(self, plan: FaultPlan) -> None:
        self.seed = plan.seed
        self._armed: list[_Armed] = []
        self._added = 0
        #: Faults injected so far, by :attr:`FaultRule.label` (with the status for ``status``).
        self.injected: Counter[str] = Counter()
        for rule in plan.rules:
            self.add(rule)

    def add(self, rule: FaultRule) -> None:
        """Arm ``rule`` after the existing ones."""
        rng = random.Random(f"{self.seed}:{self._added}")
        self._added += 1
        self._armed.append(_Armed(rule, rng))

    def clear(self) -> None:
        """Disarm every rule (the injected counts are kept)."""
        self._armed.clear()

    @property
    def rules(self) -> list[FaultRule]:
        """The armed rules, in order."""
        return [armed.rule for armed in self._armed]

    def docs(self) -> list[dict[str, Any]]:
        """The armed rules with their progress, as JSON."""
        return [
            {**armed.rule.doc(), "matched": armed.matched, "injected": armed.injected}
            for armed in self._armed
        ]

    def _choose(self, candidates: Iterable[_Armed]) -> FaultRule | None:
        chosen: _Armed | None = None
        for armed in list(candidates):
            if armed.fires() and chosen is None:
                chosen = armed
        if chosen is None:
            self._drop_spent()
            return None
        chosen.injected += 1
        rule = chosen.rule
        if rule.kind == "status" and len(rule.status) > 1:
            rule = attrs.evolve(rule, status=(chosen.rng.choice(rule.status),))
        name = f"{rule.label}:{rule.status[0]}" if rule.kind == "status" else rule.label
        self.injected[name] += 1
        self._drop_spent()
        return rule

    def _drop_spent(self) -> None:
        self._armed = [armed for armed in self._armed if not armed.spent]

    def for_request(self, route: str) -> FaultRule | None:
        """The fault to inject into a request to ``route`` (e.g. ``"POST /tasks/submit"``);
        a ``status`` rule comes back with the one status chosen for this request."""
        return self._choose(
            armed
            for armed in self._armed
            if armed.rule.kind != "task_error"
            and any(fnmatch.fnmatchcase(route, pattern) for pattern in armed.rule.routes)
        )

    def for_task(self, qpu_id: str) -> FaultRule | None:
        """The ``task_error`` rule that fails a task about to run on ``qpu_id``, if any."""
        return self._choose(
            armed
            for armed in self._armed
            if armed.rule.kind == "task_error"
            and (not armed.rule.qpus or qpu_id in armed.rule.qpus)
        )

    @staticmethod
    def unmatched(rule: FaultRule, routes: Sequence[str]) -> list[str]:
        """Patterns of ``rule`` that match none of ``routes`` (most likely typos)."""
        if rule.kind == "task_error":
            return []
        return [p for p in rule.routes if not any(fnmatch.fnmatchcase(r, p) for r in routes)]
