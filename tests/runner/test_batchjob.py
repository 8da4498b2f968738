"""A batch job encodes exactly the task a plain Job would, whatever the config kind."""

from __future__ import annotations

import pytest
from runner_support import QPU_A, RX

from oqc_trio.job import Job
from oqc_trio.runner.batchjob import BatchJob, WireConfigs
from oqc_trio.runner.expand import expand_text


@pytest.mark.parametrize(
    "extra",
    ["", "noise = true\n", "bond_dimension = 4\n", 'results_format = "raw"\ntag = "t"\n'],
)
def test_a_batch_job_encodes_what_a_job_encodes(extra: str) -> None:
    batch = expand_text(
        f'[defaults]\nqpu = "{QPU_A}"\nshots = [10, 20]\n{extra}'
        f'[[jobs]]\nprogram = """{RX}"""\nparams.theta = [0.5, 1.5]\n',
        "b.toml",
    )
    wire = WireConfigs(batch.config_objects)
    for logical in batch.jobs:
        config = batch.config_objects[logical.config]
        plain = Job(logical.program, logical.qpu, config, tag=logical.tag)
        ours = BatchJob(logical.program, logical.qpu, config, tag=logical.tag)
        ours._wire_config = wire[logical.config]
        assert ours._encoded_task() == plain._encoded_task()
