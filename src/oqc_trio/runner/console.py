"""A rich ``Console`` made on first use: a quiet run that prints nothing never imports rich
(about 25 ms of start-up). Writing to a pipe or a file, it does not wrap or cut at 80
columns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["lazy_console"]

_UNBOUNDED_WIDTH = 1000


class _LazyConsole:
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            console = Console(**self._options)
            if not console.is_terminal and "width" not in self._options:
                # A pipe or a log file has no width to fit: rich would assume 80 columns
                # and cut job names and headers in the summary table.
                console.width = _UNBOUNDED_WIDTH
            self._console = console
        return getattr(self._console, name)


def lazy_console(**options: Any) -> Console:
    """A stand-in for ``Console(**options)`` that creates it when first used."""
    return cast("Console", _LazyConsole(options))
