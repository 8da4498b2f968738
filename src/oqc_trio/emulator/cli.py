"""``oqc-emulator``: serve the emulator from the command line.

::

    oqc-emulator serve [--host 127.0.0.1] [--port 8000] [--config emulator.toml]
                       [--executor aer|instant] [--db emulator.sqlite]
                       [--fault KIND:key=value,...]... [--fault-seed N] [--access-log]

Prints the base URL, the QPUs and the tokens, then serves until interrupted (Ctrl-C).
Loopback only by default: binding another address warns, because the emulator has no TLS
and its development token is printed in clear. ``--db`` keeps users, tokens and tasks in
an sqlite file, so that a restarted server resumes its queue; without it, everything is in
memory and lost when the process ends. ``--fault`` adds a fault rule (after those of the
config's ``[faults]``), e.g. ``--fault status:status=429|503,probability=0.1`` or
``--fault drop:probability=0.02`` (see :mod:`oqc_trio.emulator.faults`).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

import attrs
import trio

from .config import ConfigError, EmulatorConfig
from .faults import FaultPlan, FaultRule, parse_cli_fault
from .persistence import StoreError

__all__ = ["console_main", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oqc-emulator",
        description="A local OQC QCaaS server (legacy and v4 REST dialects) that runs "
        "OpenQASM programs on qiskit-aer.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the emulator until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    serve.add_argument("--config", help="emulator TOML file (default: two QPUs, a dev user)")
    serve.add_argument(
        "--executor",
        choices=("aer", "instant"),
        default="aer",
        help="aer: real simulation; instant: all-zeros counts, no simulation",
    )
    serve.add_argument(
        "--db", help="sqlite file keeping users, tokens and tasks across restarts (default: none)"
    )
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="RULE",
        help="inject faults: KIND[:key=value,...] or a JSON object, e.g. "
        "'status:status=503,probability=0.1' (repeatable)",
    )
    serve.add_argument("--fault-seed", type=int, help="seed of the fault rules' random draws")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def banner(url: str, config: EmulatorConfig, *, executor: str) -> str:
    """The start-up text: URL, QPUs, and how to authenticate."""
    lines = [f"oqc-emulator serving {url} (executor: {executor})", "QPUs:"]
    for qpu in config.qpus:
        where = f"{url}/qpu/{qpu.short}" if config.qpu_paths else url
        lines.append(f"  {qpu.id}  {qpu.name}, {qpu.qubits} qubits, url {where}")
    if config.generated_dev_token is not None:
        lines.append(f"development token: {config.generated_dev_token}")
    else:
        lines.append(f"user token: {config.first_token}")
    for rule in config.faults.rules:
        lines.append(f"fault: {rule.kind} on {', '.join(rule.routes)} ({_how_often(rule)})")
    lines.append(f"admin token: {config.admin_token}")
    return "\n".join(lines)


def _how_often(rule: FaultRule) -> str:
    if rule.probability is not None:
        return f"probability {rule.probability:g}"
    if rule.sequence:
        return "sequence " + "".join("1" if s else "0" for s in rule.sequence)
    return "every matching request"


async def _serve(args: argparse.Namespace, config: EmulatorConfig, out: TextIO) -> None:
    from .server import open_emulator

    async with open_emulator(
        config,
        executor=args.executor,
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        db=args.db,
    ) as emulator:
        print(banner(emulator.url, config, executor=args.executor), file=out, flush=True)
        await trio.sleep_forever()


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    stream = sys.stdout if out is None else out
    args = _parser().parse_args(argv)
    try:
        config = EmulatorConfig.from_toml(args.config) if args.config else EmulatorConfig.default()
        config = _with_faults(config, args.fault, args.fault_seed)
    except ConfigError as exc:
        print(f"oqc-emulator: {exc}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(
            f"oqc-emulator: warning: serving on {args.host}, reachable from other machines; "
            "there is no TLS and tokens travel in clear",
            file=sys.stderr,
        )
    try:
        trio.run(_serve, args, config, stream)
    except BaseException as exc:
        # Nurseries wrap what escapes them in exception groups: look at the leaves.
        leaves = list(_leaves(exc))
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            return 0
        store_errors = [leaf for leaf in leaves if isinstance(leaf, StoreError)]
        if store_errors:
            print(f"oqc-emulator: {store_errors[0]}", file=sys.stderr)
            return 2
        os_errors = [leaf for leaf in leaves if isinstance(leaf, OSError)]
        if os_errors and len(os_errors) == len(leaves):
            print(
                f"oqc-emulator: cannot serve on {args.host}:{args.port}: {os_errors[0]}",
                file=sys.stderr,
            )
            return 1
        raise
    return 0


def _with_faults(config: EmulatorConfig, rules: Sequence[str], seed: int | None) -> EmulatorConfig:
    if not rules and seed is None:
        return config
    plan = config.faults
    added = tuple(parse_cli_fault(text) for text in rules)
    return attrs.evolve(
        config,
        faults=FaultPlan(seed=plan.seed if seed is None else seed, rules=(*plan.rules, *added)),
    )


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def console_main() -> None:
    """Entry point of the ``oqc-emulator`` script."""
    sys.exit(main())


# The guard matters: the aer executor's worker processes re-import the main module.
if __name__ == "__main__":
    console_main()
