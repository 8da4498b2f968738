"""A rich ``Console`` made on first use: a quiet run that prints nothing never imports rich
(about 25 ms of start-up)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["lazy_console"]


class _LazyConsole:
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


def lazy_console(**options: Any) -> Console:
    """A stand-in for ``Console(**options)`` that creates it when first used."""
    return cast("Console", _LazyConsole(options))
