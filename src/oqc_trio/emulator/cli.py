"""``oqc-emulator``: serve the emulator from the command line.

::

    oqc-emulator serve [--host 127.0.0.1] [--port 8000] [--config emulator.toml]
                       [--executor aer|instant] [--access-log]

Prints the base URL, the QPUs and the tokens, then serves until interrupted (Ctrl-C).
Loopback only by default: binding another address warns, because the emulator has no TLS
and its development token is printed in clear.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

import trio

from .config import ConfigError, EmulatorConfig

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
    lines.append(f"admin token: {config.admin_token}")
    return "\n".join(lines)


async def _serve(args: argparse.Namespace, config: EmulatorConfig, out: TextIO) -> None:
    from .server import open_emulator

    async with open_emulator(
        config,
        executor=args.executor,
        host=args.host,
        port=args.port,
        access_log=args.access_log,
    ) as emulator:
        print(banner(emulator.url, config, executor=args.executor), file=out, flush=True)
        await trio.sleep_forever()


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    stream = sys.stdout if out is None else out
    args = _parser().parse_args(argv)
    try:
        config = EmulatorConfig.from_toml(args.config) if args.config else EmulatorConfig.default()
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
        os_errors = [leaf for leaf in leaves if isinstance(leaf, OSError)]
        if os_errors and len(os_errors) == len(leaves):
            print(
                f"oqc-emulator: cannot serve on {args.host}:{args.port}: {os_errors[0]}",
                file=sys.stderr,
            )
            return 1
        raise
    return 0


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
