"""One Bell-state job: submit, wait, print the counts.

python examples/bell.py            # against a local emulator
OQC_URL=https://... OQC_TOKEN=... python examples/bell.py
"""

from __future__ import annotations

import trio
from connect import connect

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


async def main() -> None:
    async with connect() as sdk:
        qpu = sdk.default_qpu_id or (await sdk.list_qpus())[0]["id"]
        job = sdk.create_job(program=BELL, qpu_id=qpu)
        outputs = await job.execute(timeout_s=60)
        outputs.raise_for_error()
        counts = outputs.one.data["c"]
        print(f"{job.task_id} on {qpu}: {counts}")
        assert set(counts) <= {"00", "11"}, "an ideal Bell state only gives 00 and 11"


if __name__ == "__main__":
    trio.run(main)
