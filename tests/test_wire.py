"""The sans-I/O protocol: endpoint tables, exact bodies, chunking, statuses, error bodies."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oqc_trio import _wire
from oqc_trio._wire import Api, Dialect, JobState
from oqc_trio.exceptions import (
    AuthenticationError,
    ConnectionFailureException,
    NotFoundError,
    ProtocolViolation,
    RateLimited,
    RequestTooLarge,
    ServerException,
)

BASE = "http://127.0.0.1:8000"
QPU_URL = "http://127.0.0.1:8000/qpu-a"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, Dialect.LEGACY),
        ({"OQC_QCAAS_V4": "1"}, Dialect.V4),
        ({"OQC_QCAAS_V4": " TRUE "}, Dialect.V4),
        ({"OQC_ENTRA_ENABLED": "yes"}, Dialect.V4),
        ({"OQC_QCAAS_V4": "0"}, Dialect.LEGACY),
        ({"OQC_QCAAS_V4": "on"}, Dialect.LEGACY),
    ],
)
def test_dialect_from_env(env: dict[str, str], expected: Dialect) -> None:
    assert _wire.dialect_from_env(env) is expected


def test_explicit_dialect_wins_and_bad_names_are_refused() -> None:
    assert _wire.resolve_dialect("V4", {}) is Dialect.V4
    assert _wire.resolve_dialect(Dialect.LEGACY, {"OQC_QCAAS_V4": "1"}) is Dialect.LEGACY
    with pytest.raises(ValueError, match="unknown dialect"):
        _wire.resolve_dialect("v5", {})


def test_legacy_endpoints_use_the_qpu_url() -> None:
    api = Api(BASE + "/")
    assert api.health().url == BASE + "/admin/version"
    assert not api.health().authenticated
    assert api.list_qpus().params == (("per_page", "1000"),)
    assert api.features("q1").url == BASE + "/admin/qpu/q1"
    assert api.all_info(QPU_URL, "abc").url == QPU_URL + "/tasks/abc/all_info"
    ids = api.create_task_ids("q1", QPU_URL, 3)
    assert ids.url == QPU_URL + "/tasks"
    assert json.loads(ids.body or b"") == {"qpu_id": "q1", "task_count": 3, "tag": None}
    cal = api.calibration("q1", QPU_URL, dt.date(2026, 1, 2))
    assert cal.params == (("qpu_id", "q1"), ("date", "2026-01-02"))
    assert api.next_window(QPU_URL).url == QPU_URL + "/windows/next"


def test_v4_endpoints_are_base_relative() -> None:
    api = Api(BASE, Dialect.V4)
    assert api.health().url == BASE + "/healthz"
    assert api.list_qpus().url == BASE + "/qpus"
    assert api.features("q1").url == BASE + "/qpus/q1/features"
    assert api.all_info(QPU_URL, "abc").url == BASE + "/tasks/abc/all_info"
    body = json.loads(api.create_task_ids("q1", QPU_URL, 2, "t").body or b"")
    assert body == {"tasks": [{"qpu_id": "q1", "tag": "t"}, {"qpu_id": "q1", "tag": "t"}]}
    search = api.calibration("q1", None, dt.date(2026, 1, 2))
    assert search.url.endswith("/qpus/q1/benchmarks/search")
    assert dict(search.params) == {
        "start_date": "2026-01-02T00:00:00",
        "end_date": "2026-01-02T23:59:59",
    }


def test_only_get_put_delete_are_idempotent() -> None:
    api = Api(BASE)
    assert api.all_info(None, "x").idempotent
    assert not api.submit(None, b"{}").idempotent
    assert not api.cancel_many(None, ["x"]).idempotent
    assert api.submit(QPU_URL, b"{}").path == "/qpu-a/tasks/submit"


def test_task_dict_field_order_and_optional_fields() -> None:
    task = _wire.task_dict(program="P", qpu_id="q", config="C")
    assert list(task) == ["program", "qpu_id", "config"]
    task = _wire.task_dict(
        program="P", qpu_id="q", config="C", tag="t", hybrid_marker="h", external_config={"a": 1}
    )
    assert list(task) == ["program", "qpu_id", "tag", "hybrid_marker", "config", "external_config"]
    assert "tag" not in _wire.task_dict(program="P", qpu_id="q", config="C", tag="")


def _refuse(index: int, error: RequestTooLarge) -> None:
    raise AssertionError(f"task {index} refused: {error}")


@given(
    programs=st.lists(st.text(min_size=0, max_size=300), min_size=1, max_size=40),
    limit=st.integers(min_value=2_000, max_value=20_000),
)
@settings(max_examples=60, deadline=None)
def test_chunks_are_exactly_sized_and_complete(programs: list[str], limit: int) -> None:
    encoded = [
        _wire.encode_task(_wire.task_dict(program=p, qpu_id="qpu:uk:1", config="{}"))
        for p in programs
    ]
    chunks = [
        [i for i, _ in chunk]
        for chunk in _wire.chunk_tasks(enumerate(encoded), max_body_bytes=limit, too_large=_refuse)
    ]
    assert [i for chunk in chunks for i in chunk] == list(range(len(programs)))
    for chunk in chunks:
        body = _wire.submit_body([_wire.with_task_id(encoded[i], str(uuid.uuid4())) for i in chunk])
        assert len(body) <= limit
        decoded = json.loads(body)
        assert [t["program"] for t in decoded["tasks"]] == [programs[i] for i in chunk]
        assert all(len(t["task_id"]) == 36 for t in decoded["tasks"])
    # Greedy: no chunk could have taken the next task.
    for chunk, following in itertools.pairwise(chunks):
        bigger = [*chunk, following[0]]
        body = _wire.submit_body([_wire.with_task_id(encoded[i], "0" * 36) for i in bigger])
        assert len(body) > limit


def test_chunks_read_tasks_lazily() -> None:
    read: list[int] = []

    def tasks() -> Iterator[tuple[int, bytes]]:
        for i in range(10):
            read.append(i)
            yield i, _wire.encode_task({"program": "x" * 50})

    chunks = _wire.chunk_tasks(tasks(), max_body_bytes=300, too_large=_refuse)
    first = next(chunks)
    # Only the tasks of the first chunk and the one that did not fit in it have been read.
    assert read == [*(i for i, _ in first), len(first)]


def test_a_single_task_over_the_limit_is_refused_alone() -> None:
    encoded = [_wire.encode_task({"program": "x" * n}) for n in (50, 500, 50)]
    refused: list[tuple[int, RequestTooLarge]] = []
    chunks = _wire.chunk_tasks(
        enumerate(encoded),
        max_body_bytes=300,
        too_large=lambda i, error: refused.append((i, error)),
    )
    assert [[i for i, _ in chunk] for chunk in chunks] == [[0, 2]]
    [(index, error)] = refused
    assert index == 1
    assert "not sent" in str(error) and "300-byte limit" in str(error)


def test_bodies_are_compact_and_keep_non_ascii() -> None:
    assert _wire.encode({"a": [1, 2], "b": "é"}) == '{"a":[1,2],"b":"é"}'.encode()


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("CREATED", JobState.CREATED),
        ("queued", JobState.SUBMITTED),
        ("SUBMITTED", JobState.SUBMITTED),
        ("IN_PROGRESS", JobState.RUNNING),
        ("succeeded", JobState.COMPLETED),
        ("DONE", JobState.COMPLETED),
        ("ERROR", JobState.FAILED),
        ("CANCELED", JobState.CANCELLED),
        ("EXPIRED", JobState.FAILED),
        ("whatever", JobState.UNKNOWN),
        (None, JobState.UNKNOWN),
    ],
)
def test_status_mapping(word: str | None, state: JobState) -> None:
    assert _wire.map_status(word) is state


def test_expired_is_terminal_with_a_clear_error() -> None:
    info = _wire.parse_task_info({"status": "EXPIRED"}, "t1")
    assert info.ended and info.state is JobState.FAILED
    assert info.error_code == _wire.EXPIRED_ERROR_CODE
    assert "expired" in (info.error_message or "")


def test_task_info_contract_violations_are_clear() -> None:
    with pytest.raises(ProtocolViolation, match="no string 'status'"):
        _wire.parse_task_info({"results": {}}, "t1")
    with pytest.raises(ProtocolViolation, match="'results' is missing"):
        _wire.parse_task_info({"status": "COMPLETED"}, "t1")
    with pytest.raises(ProtocolViolation, match="JSON object"):
        _wire.parse_task_info(["COMPLETED"], "t1")


def test_task_info_failed_defaults_and_v4_metadata() -> None:
    info = _wire.parse_task_info({"status": "FAILED", "task_error": None}, "t")
    assert (info.error_code, info.error_message) == (-1, "Unknown error.")
    info = _wire.parse_task_info(
        {"status": "COMPLETED", "results": {"c": {"1": 3}}, "metadata": {}, "id": "t", "tag": None},
        "t",
    )
    assert info.metadata == {
        "config": None,
        "created_at": None,
        "id": "t",
        "qpu_id": None,
        "tag": None,
    }


def test_task_ids_must_be_uuids_and_counted() -> None:
    good = [str(uuid.uuid4()) for _ in range(2)]
    assert _wire.parse_task_ids(good, Dialect.LEGACY, 2) == good
    assert _wire.parse_task_ids({"tasks": good}, Dialect.V4, 2) == good
    with pytest.raises(ProtocolViolation, match="not a UUID"):
        _wire.parse_task_ids(["nope", good[0]], Dialect.LEGACY, 2)
    with pytest.raises(ProtocolViolation, match="asked for 3"):
        _wire.parse_task_ids(good, Dialect.LEGACY, 3)


def test_next_window_tolerates_null_and_parses_utc() -> None:
    assert _wire.parse_next_window({"next_window": None}) is None
    assert _wire.parse_next_window({}) is None
    when = _wire.parse_next_window({"next_window": {"starting": "2026-01-02T03:04:05Z"}})
    assert when == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, RateLimited),
        (503, ConnectionFailureException),
        (408, ConnectionFailureException),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (400, ServerException),
    ],
)
def test_exception_for_status(status: int, kind: type[Exception]) -> None:
    exc = _wire.exception_for_status(
        status,
        json.dumps(_wire.error_body("Invalid program")).encode(),
        "application/json",
        retry_after="3",
        method="POST",
        path="/tasks/submit",
    )
    assert type(exc) is kind
    assert exc.message == "Invalid program" and exc.server_error_code == status
    assert "POST /tasks/submit" in str(exc)


def test_error_message_fallbacks() -> None:
    assert _wire.parse_error_message(b'{"detail": "expired token"}', "application/json")[0] == (
        "expired token"
    )
    # A 'response' without errors is a KeyError in the official SDK; here the text is used.
    message, meta = _wire.parse_error_message(b'{"response": {}}', "application/json")
    assert message == '{"response": {}}' and meta == {"response": {}}
    assert _wire.parse_error_message(b"Bad Gateway", "text/plain") == ("Bad Gateway", {})


def test_retry_after_seconds_and_http_date() -> None:
    assert _wire.parse_retry_after("2.5") == 2.5
    assert _wire.parse_retry_after("-3") == 0.0
    assert _wire.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert _wire.parse_retry_after("soon") is None
    assert _wire.parse_retry_after(None) is None


def test_qpu_catalogue_parsing() -> None:
    legacy = {"items": [{"id": "q1", "url": QPU_URL, "active": True, "name": "A"}]}
    (record,) = _wire.parse_qpus(legacy, Dialect.LEGACY)
    assert (record.id, record.url, record.active, record.name) == ("q1", QPU_URL, True, "A")
    with pytest.raises(ProtocolViolation, match="has no 'url'"):
        _wire.parse_qpus({"items": [{"id": "q1", "active": True}]}, Dialect.LEGACY)
    (v4,) = _wire.parse_qpus([{"id": "q1"}], Dialect.V4)
    assert v4.active and v4.url is None
    assert _wire.parse_features({"feature_set": '{"max_shots": 5}'}, Dialect.LEGACY) == {
        "max_shots": 5
    }
    assert _wire.parse_features({"qpu_id": "q", "data": {"a": 1}}, Dialect.V4) == {"a": 1}
