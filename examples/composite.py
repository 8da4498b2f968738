"""A CompositeJob: every combination of three programs and two QPUs, results as they land.

python examples/composite.py
"""

from __future__ import annotations

import trio
from connect import connect

from oqc_trio import CompositeJob

TEMPLATE = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg c[3];
{body}
measure q -> c;
"""
PROGRAMS = [
    TEMPLATE.format(body="x q[0];"),
    TEMPLATE.format(body="h q[0];\ncx q[0],q[1];"),
    TEMPLATE.format(body="h q[0];\ncx q[0],q[1];\ncx q[1],q[2];"),
]


async def main() -> None:
    async with connect() as sdk:
        qpus = [record["id"] for record in await sdk.list_qpus()][:2]
        batch = sdk.create_job(program=PROGRAMS, qpu_id=qpus)
        assert isinstance(batch, CompositeJob)
        print(f"{len(batch)} jobs: {len(PROGRAMS)} programs x {len(qpus)} QPUs")
        async with batch.as_completed(timeout_s=120) as finished:
            async for job in finished:
                print(f"  {job.qpu_id}  {job.state.value:9}  {job.outputs.one.data}")
        print(batch)
        if not batch.completed:
            raise SystemExit(1)


if __name__ == "__main__":
    trio.run(main)
