"""Every example script and the notebook run against a local emulator, so none can rot."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

pytest.importorskip("qiskit_aer")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = ["bell.py", "composite.py", "embed_in_trio_app.py", "analysis.py"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OQC_URL", "OQC_TOKEN")}
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_script_runs(script: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if script == "analysis.py":
        png = tmp_path / "sweep.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_notebook_runs_cell_by_cell_as_under_autoawait_trio() -> None:
    """Each code cell is compiled with top-level await and run in its own ``trio.run``,
    which is what IPython's ``%autoawait trio`` does."""
    notebook = json.loads((EXAMPLES / "jupyter_quickstart.ipynb").read_text())
    namespace: dict[str, Any] = {}
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or source.startswith("%"):
            continue
        code = compile(source, "<cell>", "exec", flags=flags)
        result = eval(code, namespace)
        if result is not None:  # a coroutine: the cell awaited something
            trio.run(lambda r=result: r)
    assert namespace["batch"].completed
    assert namespace["counts"].sizes["result"] == 10
