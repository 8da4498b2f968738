"""Counts over a parameter sweep as a scipp DataArray, saved as a heat-map PNG.

python examples/analysis.py [out.png]
"""

from __future__ import annotations

import math
import sys

import trio
from connect import connect

from oqc_trio import CompositeJob

TEMPLATE = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
ry({theta}) q[0];
cx q[0],q[1];
measure q -> c;
"""


async def run_sweep(thetas: list[float]):  # type: ignore[no-untyped-def]
    async with connect() as sdk:
        qpu = sdk.default_qpu_id or (await sdk.list_qpus())[0]["id"]
        batch = sdk.create_job(program=[TEMPLATE.format(theta=t) for t in thetas], qpu_id=qpu)
        assert isinstance(batch, CompositeJob)
        outputs = await batch.execute(timeout_s=120)
        outputs.raise_for_error()
        return outputs.to_counts_dataarray("c")


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scipp as sc

    thetas = [i * math.pi / 10 for i in range(11)]
    counts = trio.run(run_sweep, thetas)
    counts = counts.assign_coords(theta=sc.array(dims=["result"], values=thetas, unit="rad"))
    probabilities = counts / counts.sum("bit")
    print(probabilities)
    figure, axes = plt.subplots(figsize=(6, 3.5))
    image = axes.imshow(
        probabilities.values.T,
        aspect="auto",
        origin="lower",
        extent=(thetas[0], thetas[-1], -0.5, probabilities.sizes["bit"] - 0.5),
    )
    axes.set_yticks(range(probabilities.sizes["bit"]))
    axes.set_yticklabels(list(counts.coords["bitstring"].values))
    axes.set_xlabel("theta (rad)")
    axes.set_ylabel("outcome")
    figure.colorbar(image, label="probability")
    figure.tight_layout()
    out = sys.argv[1] if len(sys.argv) > 1 else "sweep.png"
    figure.savefig(out, dpi=100)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
