"""Task IDs are reserved per block of submit chunks: one ``POST /tasks`` (and one call of the
reservation hook, so one journal flush in the runner) for up to 8 chunks or 1,000 tasks, and
every ID reaches the hook before the submit request that carries it is sent. A request too
large for one body is split; a server refusing a block's size gets one request per chunk."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import httpx
from faults import FaultyTransport
from hypothesis import given
from hypothesis import strategies as st
from runtime_support import BELL, FAST_POLL, config, counters, open_emulator

from oqc_trio import _wire
from oqc_trio._actors.submitter import (
    RESERVE_MAX_CHUNKS,
    RESERVE_MAX_TASKS,
    Submitter,
    SubmitTicket,
    blocks,
)
from oqc_trio._actors.supervisor import drive
from oqc_trio.client import OqcSdk
from oqc_trio.job import JobState


@given(st.lists(st.integers(min_value=1, max_value=1500), max_size=60))
def test_blocks_keep_order_and_caps(sizes: list[int]) -> None:
    chunks = [list(range(n)) for n in sizes]
    grouped = list(blocks(iter(chunks)))
    assert [c for block in grouped for c in block] == chunks
    for block in grouped:
        assert 1 <= len(block) <= RESERVE_MAX_CHUNKS
        # Over the task cap only when a single chunk is larger than the cap.
        assert sum(map(len, block)) <= RESERVE_MAX_TASKS or len(block) == 1
    # Greedy: a block was closed only because the next chunk would not fit in it.
    for block, following in itertools.pairwise(grouped):
        assert (
            len(block) == RESERVE_MAX_CHUNKS
            or sum(map(len, block)) + len(following[0]) > RESERVE_MAX_TASKS
        )


def _padded(i: int) -> str:
    # ~1 KB per task: ~100 tasks per 128 KB submit chunk, so 2,500 jobs make ~25 chunks.
    return BELL.replace("h q[0];", f"h q[0];\n// job {i} {'x' * 900}")


class _Recorder:
    """Sees every request before it is sent (through a forwarding transport)."""

    def __init__(self) -> None:
        self.reserved: set[str] = set()
        self.hook_sizes: list[int] = []
        self.sent_unreserved: list[str] = []
        self.submits = 0

    def decide(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/tasks/submit"):
            self.submits += 1
            ids = [task["task_id"] for task in json.loads(request.content)["tasks"]]
            self.sent_unreserved.extend(i for i in ids if i not in self.reserved)
        return None

    async def on_reserved(self, tickets: Sequence[Any]) -> None:
        self.hook_sizes.append(len(tickets))
        self.reserved.update(t.task_id for t in tickets)


async def _drive_padded(
    faults: FaultyTransport, count: int, on_reserved: Any = None
) -> tuple[list[Any], list[Any], dict[str, int], dict[str, Any]]:
    """Drive ``count`` ~1 KB jobs on an emulator through ``faults``: the jobs, the errors
    ``drive`` returned, the SDK's request counts and the emulator's counters."""
    async with open_emulator(config(), executor="instant") as emu:
        async with OqcSdk(
            emu.url,
            authentication_token=emu.token,
            poll_policy=FAST_POLL,
            transport_factory=lambda: faults,
        ) as sdk:
            qpu = (await sdk.list_qpus())[0]["id"]
            jobs = [sdk.create_job(program=_padded(i), qpu_id=qpu) for i in range(count)]
            errors = await drive(jobs, sdk._runtime(), on_reserved=on_reserved)
            return jobs, errors, sdk.statistics().requests, await counters(emu)


async def test_one_reservation_per_block_and_ids_journaled_first() -> None:
    recorder = _Recorder()
    jobs, errors, requests, stats = await _drive_padded(
        FaultyTransport(recorder.decide), 2500, recorder.on_reserved
    )
    assert errors == []
    assert all(job.state is JobState.COMPLETED for job in jobs)
    assert recorder.sent_unreserved == []
    assert sum(recorder.hook_sizes) == 2500
    assert max(recorder.hook_sizes) <= RESERVE_MAX_TASKS
    # One ID request per hook call, and several chunks per reservation.
    assert requests["create_ids"] == len(recorder.hook_sizes)
    assert recorder.submits == requests["submit"] >= 2 * len(recorder.hook_sizes)
    assert len(recorder.hook_sizes) <= 2500 // RESERVE_MAX_TASKS + 3
    assert len(stats["submissions"]) == 2500 and stats["duplicate_submissions"] == {}


class _RefusingIds(FaultyTransport):
    """Answers ``status`` to every ID request asking for more than ``above`` IDs."""

    def __init__(self, status: int, above: int = 0) -> None:
        super().__init__(lambda _: None)
        self.status, self.above = status, above
        self.id_requests: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/tasks"):
            count = json.loads(request.content)["task_count"]
            self.id_requests.append(count)
            if count > self.above:
                return httpx.Response(self.status, json={"response": {"errors": ["no IDs"]}})
        return await super().handle_async_request(request)


async def test_a_server_refusing_large_reservations_gets_one_per_chunk() -> None:
    """The service's limit on IDs per request is not documented: a block refused as too large
    (400, 413, 422) falls back to one reservation per chunk, the official SDK's size."""
    faults = _RefusingIds(422, above=200)
    jobs, errors, _, stats = await _drive_padded(faults, 1500)
    assert errors == []
    assert all(job.state is JobState.COMPLETED for job in jobs)
    assert len(stats["submissions"]) == 1500 and stats["duplicate_submissions"] == {}
    refused = [n for n in faults.id_requests if n > 200]
    granted = [n for n in faults.id_requests if n <= 200]
    assert len(refused) == 1  # then one reservation per chunk for the rest of the call
    assert sum(granted) == 1500 and len(granted) >= 10


async def test_refused_reservation_fails_every_job_of_the_block() -> None:
    faults = _RefusingIds(409)
    jobs, _, _, stats = await _drive_padded(faults, 300)
    assert {job.state for job in jobs} == {JobState.FAILED}
    assert {job.error.error_code for job in jobs if job.error} == {409}
    assert all(job.task_id is None for job in jobs)
    assert stats["submissions"] == {}
    assert len(faults.id_requests) == 1  # a conflict is not about size: no retry per chunk


class _Answer:
    def __init__(self, payload: Any) -> None:
        self._payload = payload

    def json(self) -> Any:
        return self._payload


async def test_a_v4_reservation_too_large_for_one_body_is_split() -> None:
    """A v4 ID request names the QPU once per ID: with a long QPU ID, 1,000 IDs would not fit
    in one body. The IDs are asked in as many requests as fit, and journaled at once."""
    qpu = "qpu:" + "q" * 200
    api = _wire.Api("http://127.0.0.1:1", _wire.Dialect.V4)
    bodies: list[int] = []
    issued = iter(range(10**6))

    async def send(request: _wire.Request, *, deadline: float) -> _Answer:
        bodies.append(len(request.body or b""))
        count = len(json.loads(request.body or b"")["tasks"])
        fresh = [f"00000000-0000-0000-0000-{next(issued):012d}" for _ in range(count)]
        return _Answer({"tasks": fresh})

    hooked: list[list[str | None]] = []

    async def on_reserved(tickets: Sequence[SubmitTicket]) -> None:
        hooked.append([t.task_id for t in tickets])

    submitter = Submitter(send, api, max_body_bytes=20_000, on_reserved=on_reserved)
    tickets = [SubmitTicket(qpu_id=qpu, task_base=None, encode=lambda: b"{}") for _ in range(300)]
    await submitter._reserve(qpu, None, tickets)
    assert len(bodies) > 1 and max(bodies) <= 20_000
    assert [t.task_id for t in tickets] == [f"00000000-0000-0000-0000-{i:012d}" for i in range(300)]
    assert hooked == [[t.task_id for t in tickets]]  # one hook call for the whole block
