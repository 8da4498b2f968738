"""Noisy QPUs: calibrations, their documents by date, the noise they apply (checked against
binomial bounds), and connectivity (refused or routed)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import httpx
import pytest
import trio
from emulator_support import auth, compiler_config, make_config, submit_one

pytest.importorskip("qiskit_aer")

from oqc_trio.emulator.calibration import Calibration
from oqc_trio.emulator.config import DEFAULT_QPU_IDS, ConfigError, EmulatorConfig
from oqc_trio.emulator.server import RunningEmulator, open_emulator

NOISY = DEFAULT_QPU_IDS[1]
READOUT = "qpu:uk:9:readout0001"
CHAIN = "qpu:uk:9:chain00001"
ROUTED = "qpu:uk:9:routed0001"
#: Outcomes must fall within this many standard deviations of their expected count.
SIGMAS = 5.0


def within_binomial(count: int, shots: int, p: float) -> bool:
    """``count`` successes in ``shots`` trials is plausible for probability ``p``."""
    if p == 0.0:
        return count == 0
    spread = SIGMAS * math.sqrt(shots * p * (1 - p))
    return abs(count - shots * p) <= spread + 1


async def run(
    http: httpx.AsyncClient, emu: RunningEmulator, program: str, qpu: str, shots: int
) -> dict:
    config = compiler_config(shots)
    task_id = await submit_one(http, emu, program, qpu_id=qpu, config=config, token=emu.token)
    with trio.fail_after(60):
        await emu.wait_for_status(task_id, "COMPLETED", "FAILED")
    response = await http.get(f"{emu.url}/tasks/{task_id}/all_info", headers=auth(emu.token))
    return response.json()


def qasm(qubits: int, body: str, cbits: int | None = None) -> str:
    return (
        f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{qubits}];\ncreg c[{cbits or qubits}];\n'
        + body
    )


READOUT_P01 = [0.05, 0.0, 0.12]
READOUT_P10 = [0.2, 0.08, 0.0]


def noise_config(**extra: Any) -> EmulatorConfig:
    readout_only = {
        "id": READOUT,
        "qubits": 3,
        "max_shots": 100_000,
        "execution_time_s": 0.0,
        "calibrations": [
            {
                "date": "2025-01-01",
                "qubits": [
                    {"readout_p01": p01, "readout_p10": p10}
                    for p01, p10 in zip(READOUT_P01, READOUT_P10)
                ],
            }
        ],
    }
    chain = {
        "id": CHAIN,
        "qubits": 3,
        "execution_time_s": 0.0,
        "connectivity": [[0, 1], [1, 2]],
        "calibrations": [
            {"date": "2025-01-01", "t1_us": 100.0, "t2_us": 80.0, "error_2q": 0.01},
            {"date": "2025-06-01", "t1_us": 50.0, "t2_us": 40.0, "error_2q": 0.02, "source": "x"},
        ],
    }
    routed = {**chain, "id": ROUTED, "route": True, "calibrations": []}
    return make_config(qpus=[readout_only, chain, routed], seed=11, **extra)


async def test_readout_only_noise_gives_the_configured_flip_rates(http: httpx.AsyncClient) -> None:
    shots = 20_000
    async with open_emulator(noise_config(), executor="aer") as emu:
        zeros = await run(http, emu, qasm(3, "measure q -> c;\n"), READOUT, shots)
        ones = await run(http, emu, qasm(3, "x q;\nmeasure q -> c;\n"), READOUT, shots)
    for info, flip_rates, flipped in ((zeros, READOUT_P01, "1"), (ones, READOUT_P10, "0")):
        assert info["status"] == "COMPLETED", info["task_error"]
        counts = info["results"]["c"]
        assert info["execution_metadata"]["noise_model"] == "readout"
        for qubit, rate in enumerate(flip_rates):
            # c[qubit] is character `qubit` of the bitstring (OQC order).
            seen = sum(n for bits, n in counts.items() if bits[qubit] == flipped)
            assert within_binomial(seen, shots, rate), (qubit, seen, rate)


def expected_bell(calibration: Calibration) -> dict[str, float]:
    """P(c = "c0c1") for Bell on qubits 0, 1, computed with density matrices (not Aer's
    simulator): H, the sx error of qubit 0 (H is rz sx rz), CX, the coupler's error, then
    each qubit's readout confusion."""
    import qiskit.quantum_info as qi
    from qiskit.circuit.library import CXGate, HGate
    from qiskit_aer.noise import depolarizing_error, thermal_relaxation_error

    def matched(error: float, relax: Any, n: int) -> Any:
        dim = 2**n
        fidelity = qi.average_gate_fidelity(relax)
        strength = dim * (error - (1 - fidelity)) / (dim * fidelity - 1)
        return depolarizing_error(strength, n).compose(relax) if strength > 0 else relax

    q0, q1 = calibration.qubits[0], calibration.qubits[1]
    coupler = calibration.coupler(0, 1)
    assert coupler is not None

    def relax(q: Any, ns: float) -> Any:
        return thermal_relaxation_error(q.t1_us * 1e3, q.t2_us * 1e3, ns)

    rho = qi.DensityMatrix.from_label("00").evolve(HGate(), [0])
    rho = rho.evolve(matched(q0.error_1q, relax(q0, q0.duration_1q_ns), 1).to_quantumchannel(), [0])
    rho = rho.evolve(CXGate(), [0, 1])
    both = relax(q0, coupler.duration_2q_ns).expand(relax(q1, coupler.duration_2q_ns))
    rho = rho.evolve(matched(coupler.error_2q, both, 2).to_quantumchannel(), [0, 1])
    ideal = rho.probabilities_dict()  # keys are "q1 q0"
    flips = [(q0.readout_p01, q0.readout_p10), (q1.readout_p01, q1.readout_p10)]
    expected = dict.fromkeys(("00", "01", "10", "11"), 0.0)
    for key, p in ideal.items():
        prepared = (int(key[1]), int(key[0]))
        for read in ((0, 0), (0, 1), (1, 0), (1, 1)):
            weight = p
            for (p01, p10), bit, seen in zip(flips, prepared, read):
                flip = p01 if bit == 0 else p10
                weight *= flip if seen != bit else 1 - flip
            expected[f"{read[0]}{read[1]}"] += weight  # OQC order: c[0] first
    return expected


async def test_noisy_bell_on_the_default_noisy_qpu_matches_its_calibration(
    http: httpx.AsyncClient,
) -> None:
    config = EmulatorConfig.default()
    calibration = config.qpu(NOISY).calibrations[-1]  # type: ignore[union-attr]
    shots = 40_000
    bell = qasm(2, "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n")
    async with open_emulator(config.evolve(seed=5), executor="aer") as emu:
        info = await run(http, emu, bell, NOISY, shots)
    assert info["status"] == "COMPLETED", info["task_error"]
    counts = info["results"]["c"]
    expected = expected_bell(calibration)
    assert expected["01"] + expected["10"] > 0.03  # the noise is real
    for outcome, p in expected.items():
        assert within_binomial(counts.get(outcome, 0), shots, p), (outcome, counts, expected)
    metadata = info["execution_metadata"]
    assert metadata["noise_model"] == "depolarizing+thermal_relaxation+readout"
    assert metadata["calibration_date"] == calibration.date.isoformat()


async def test_uncoupled_gates_fail_clearly_unless_the_qpu_routes(http: httpx.AsyncClient) -> None:
    far = qasm(3, "h q[0];\ncx q[0],q[2];\nmeasure q -> c;\n")
    async with open_emulator(noise_config(), executor="aer") as emu:
        refused = await run(http, emu, far, CHAIN, 100)
        routed = await run(http, emu, far, ROUTED, 400)
        near = await run(http, emu, qasm(3, "h q[1];\ncx q[1],q[2];\nmeasure q -> c;\n"), CHAIN, 50)
    assert refused["status"] == "FAILED"
    error = refused["task_error"]
    assert error["error_code"] == 1007
    assert "qubits 0 and 2, which are not coupled" in error["error_message"]
    assert "0-1, 1-2" in error["error_message"]
    assert routed["status"] == "COMPLETED"
    assert routed["execution_metadata"]["swaps_inserted"] == 1
    assert set(routed["results"]["c"]) == {"000", "101"}  # ideal: q0 and q2 agree
    assert near["status"] == "COMPLETED"


async def test_calibration_documents_follow_the_date(
    emu_dates: RunningEmulator, http: httpx.AsyncClient
) -> None:
    emu = emu_dates
    url = f"{emu.qpu_url(CHAIN)}/monitoring/calibrations"

    async def on(day: str | None) -> httpx.Response:
        params = {"qpu_id": CHAIN} | ({"date": day} if day else {})
        return await http.get(url, params=params, headers=auth())

    latest = (await on(None)).json()
    assert latest["date"] == "2025-06-01" and latest["source"] == "x"
    assert (
        latest["qubits"]["1"]["t1_us"] == 50.0
        and latest["couplers"]["0-1"]["two_qubit_gate_error"] == 0.02
    )
    assert latest["noise_applied"] is True and latest["connectivity"] == [[0, 1], [1, 2]]
    assert (await on("2025-03-15")).json()["date"] == "2025-01-01"
    assert (await on("2025-03-15")).json()["qubits"]["0"]["t2_us"] == 80.0
    assert (await on("2025-06-01")).json()["date"] == "2025-06-01"
    before = await on("2024-12-31")
    assert before.status_code == 404 and "first is dated 2025-01-01" in before.text

    v4 = await http.get(f"{emu.url}/qpus/{CHAIN}/benchmarks", headers=auth())
    assert v4.json()["data"] == latest
    search = await http.get(
        f"{emu.url}/qpus/{CHAIN}/benchmarks/search",
        params={"start_date": "2025-02-01T00:00:00", "end_date": "2025-07-01T23:59:59"},
        headers=auth(),
    )
    assert [doc["date"] for doc in search.json()["data"]] == ["2025-01-01", "2025-06-01"]
    features = await http.get(f"{emu.url}/qpus/{CHAIN}/features", headers=auth())
    assert features.json()["data"]["noisy"] is True
    assert features.json()["data"]["routes_uncoupled_gates"] is False


@pytest.fixture
async def emu_dates() -> Any:
    async with open_emulator(noise_config(), executor="instant") as server:
        yield server


def test_the_default_noisy_qpu_cites_its_source() -> None:
    (calibration,) = EmulatorConfig.default().qpu(NOISY).calibrations  # type: ignore[union-attr]
    assert "ibm_nairobi" in calibration.source and calibration.date == dt.date(2024, 5, 27)
    assert calibration.noisy and calibration.gate_noise
    assert not EmulatorConfig.default().qpus[0].calibrations


@pytest.mark.parametrize(
    ("calibration", "fragment"),
    [
        ({"t1_us": 10.0, "t2_us": 30.0}, "cannot exceed 2 * t1_us"),
        ({"t1_us": 10.0}, "t1_us and t2_us together"),
        ({"readout_p01": 1.5}, "readout_p01"),
        ({"qubits": [{}]}, "one table per qubit"),
        ({"qubits": {"7": {}}}, "qubit index below 2"),
        ({"couplers": [{"qubits": [0, 0]}]}, "not in the QPU's connectivity"),
        ({"colour": 1}, "colour: unknown key"),
    ],
)
def test_calibration_errors_name_the_key(calibration: dict, fragment: str) -> None:
    qpu = {"id": "q:1", "qubits": 2, "calibrations": [{"date": "2025-01-01", **calibration}]}
    with pytest.raises(ConfigError) as info:
        EmulatorConfig.from_mapping({"qpus": [qpu]})
    assert fragment in str(info.value)
    assert "qpus[0].calibrations[0]" in str(info.value)


def test_calibrations_need_distinct_dates() -> None:
    dated = [{"date": "2025-01-01"}, {"date": "2025-01-01"}]
    with pytest.raises(ConfigError, match="share a date"):
        EmulatorConfig.from_mapping({"qpus": [{"id": "q:1", "calibrations": dated}]})
    with pytest.raises(ConfigError, match="date: required"):
        EmulatorConfig.from_mapping({"qpus": [{"id": "q:1", "calibrations": [{}]}]})
