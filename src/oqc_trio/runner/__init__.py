"""``oqc-run``: a crash-safe, resumable, high-volume batch runner.

A batch file (TOML, see ``docs/batch-toml.md``) names programs, QPUs, shots and parameter
sweeps; ``oqc-run batch.toml`` expands it into logical jobs, journals every task ID before it
is submitted, follows the tasks to the end and writes the results as they arrive. Killed at any
instant, the same command resumes: submitted tasks are polled, never sent twice.

Modules: :mod:`.schema` (the batch file), :mod:`.expand` (sweeps into logical jobs),
:mod:`.journal` (the write-ahead state in the output directory), :mod:`.engine` (the run loop
on the actor runtime), :mod:`.results` (snapshot, CSV, HDF5, plots), :mod:`.progress` (live
display, log lines, JSONL events) and :mod:`.cli` (the command line); helpers for the
per-job hot path: :mod:`.batchjob`, :mod:`.jsonenc`, :mod:`.collector`, :mod:`.console`.
"""

from __future__ import annotations

__all__: list[str] = []
