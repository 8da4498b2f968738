"""A sequence of job outputs that also reads like a single output when it holds one.

``job.outputs`` and ``composite.execute()`` return a :class:`JobOutputProxy`. With one item,
``outputs.data`` is that item's ``data``; with several, attribute access follows the proxy's
:class:`AttrPolicy`. It also filters (``errors()``, ``results()``), checks (``any_error``,
``raise_for_error()``) and converts counts to scipp (``to_counts_dataarray``, ``like``).

How we differ from the official SDK:

- ``raise_for_error()`` raises :class:`oqc_trio.exceptions.JobFailed` (task, QPU, code and
  message as fields), not a bare ``RuntimeError``. ``JobFailed`` subclasses ``RuntimeError``,
  so handlers written for the official SDK still catch it.
- Error messages point to ``.one`` (a property), not ``.one()``.
- The constructor copies a list it is given, so appending to the proxy never changes the
  caller's list.
- scipp is imported only when counts are converted.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .dataarray_utils import Endianness, LengthMismatchPolicy
from .exceptions import JobFailed
from .job_output import JobError, JobOutput, JobResult

if TYPE_CHECKING:
    import scipp as sc

__all__ = ["AttrPolicy", "JobOutputProxy"]

T = TypeVar("T", bound=JobOutput)
U = TypeVar("U")


class AttrPolicy(enum.Enum):
    """What reading an output attribute through a proxy of several items does.

    ``RAISE`` (default): ``AttributeError``. ``WARN_FIRST``: the first item's attribute,
    with a ``UserWarning``. ``FIRST``: the first item's attribute, silently.
    """

    RAISE = enum.auto()
    WARN_FIRST = enum.auto()
    FIRST = enum.auto()


class JobOutputProxy(Sequence[T], Generic[T]):
    """A read-mostly sequence of :class:`~oqc_trio.job_output.JobOutput` items.

    ``items`` may be one output, a list or any iterable of outputs (None: empty).
    ``attr_policy`` (a mutable attribute) governs attribute delegation: an empty proxy has
    no output attributes, one item lends its attributes, several follow the policy.
    """

    def __init__(
        self,
        items: T | Iterable[T] | None = None,
        attr_policy: AttrPolicy = AttrPolicy.RAISE,
    ) -> None:
        if items is None:
            self._items: list[T] = []
        elif isinstance(items, JobOutput):
            self._items = [items]
        else:
            self._items = list(items)
        self.attr_policy = attr_policy

    def _like_me(self, items: Iterable[Any]) -> JobOutputProxy[Any]:
        """A new proxy over ``items`` with this proxy's policy."""
        return JobOutputProxy(list(items), attr_policy=self.attr_policy)

    # --- sequence protocol -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> JobOutputProxy[T]: ...

    def __getitem__(self, index: int | slice) -> T | JobOutputProxy[T]:
        """An item by position, or a new proxy (same policy) for a slice."""
        if isinstance(index, slice):
            return self._like_me(self._items[index])
        return self._items[index]

    def prepend(self, item: T) -> None:
        """Insert ``item`` before the first item."""
        self._items.insert(0, item)

    def append(self, item: T) -> None:
        """Add ``item`` after the last item."""
        self._items.append(item)

    # --- accessors ---------------------------------------------------------------------

    @property
    def is_single_instance(self) -> bool:
        """True when the proxy holds exactly one item."""
        return len(self._items) == 1

    @property
    def first(self) -> T:
        """The first item; ``IndexError("No outputs")`` when empty."""
        if not self._items:
            raise IndexError("No outputs")
        return self._items[0]

    @property
    def last(self) -> T:
        """The last item; ``IndexError("No outputs")`` when empty."""
        if not self._items:
            raise IndexError("No outputs")
        return self._items[-1]

    @property
    def one(self) -> T:
        """The only item (a property, as in the official SDK); ``ValueError`` otherwise."""
        if len(self._items) != 1:
            raise ValueError(
                f".one needs exactly 1 output, this proxy has {len(self._items)}; "
                "use .first, .last, indexing or iteration"
            )
        return self._items[0]

    def all(self) -> list[T]:
        """The items as a new list."""
        return list(self._items)

    def map(self, fn: Callable[[T], U]) -> list[U]:
        """``fn`` applied to every item, as a list."""
        return [fn(item) for item in self._items]

    def filter(self, pred: Callable[[T], bool]) -> JobOutputProxy[T]:
        """A new proxy (same policy) of the items for which ``pred`` is true."""
        return self._like_me(item for item in self._items if pred(item))

    def errors(self) -> JobOutputProxy[JobError]:
        """A new proxy (same policy) of the :class:`JobError` items."""
        return self._like_me(item for item in self._items if isinstance(item, JobError))

    def results(self) -> JobOutputProxy[JobResult]:
        """A new proxy (same policy) of the :class:`JobResult` items."""
        return self._like_me(item for item in self._items if isinstance(item, JobResult))

    # --- error checks ------------------------------------------------------------------

    @property
    def any_error(self) -> bool:
        """True when some item is an error (a truthy output: a JobError with a code)."""
        return any(bool(item) for item in self._items)

    @property
    def all_ok(self) -> bool:
        """True when no item is an error (also for an empty proxy)."""
        return not self.any_error

    def raise_for_error(self) -> JobOutputProxy[T]:
        """Raise :class:`~oqc_trio.exceptions.JobFailed` for the first error; else return self.

        The exception carries the error's ``task_id`` (``"<unsubmitted>"`` when it has
        none), ``qpu_id``, ``code`` and ``details`` (the message). The official SDK raises a
        plain ``RuntimeError``; ``JobFailed`` is one, so such handlers still work.
        """
        for item in self._items:
            if isinstance(item, JobError) and item.error_code is not None:
                raise JobFailed(
                    str(item.task_id) if item.task_id else "<unsubmitted>",
                    item.qpu_id,
                    item.error_code,
                    item.error_message,
                )
        return self

    # --- counts ------------------------------------------------------------------------

    def _results_warning_on_errors(self) -> list[JobResult]:
        """The JobResult items, with a ``UserWarning`` (at the caller's caller) for the rest."""
        results: list[JobResult] = [item for item in self._items if isinstance(item, JobResult)]
        skipped = len(self._items) - len(results)
        if skipped:
            warnings.warn(
                f"{skipped} output(s) that are not results (JobError) were left out of the "
                "counts; call raise_for_error() first to insist that every job succeeded",
                UserWarning,
                stacklevel=3,
            )
        return results

    def to_counts_dataarray(
        self,
        creg: str,
        endianness: Endianness = Endianness.BIG,
        on_length_mismatch: LengthMismatchPolicy = "raise",
    ) -> sc.DataArray:
        """The counts of register ``creg``: one row per :class:`JobResult`, as a DataArray.

        Errors are skipped with a ``UserWarning``. See
        :func:`oqc_trio.dataarray_utils.results_to_counts_dataarray` for the layout,
        ``endianness`` and ``on_length_mismatch``. Needs the ``scipp`` extra (an
        ImportError names it).
        """
        from .dataarray_utils import results_to_counts_dataarray

        return results_to_counts_dataarray(
            self._results_warning_on_errors(),
            creg,
            endianness=endianness,
            on_length_mismatch=on_length_mismatch,
        )

    def like(
        self,
        pattern: str,
        creg: str,
        endianness: Endianness = Endianness.BIG,
        on_length_mismatch: LengthMismatchPolicy = "raise",
    ) -> sc.DataArray:
        """:meth:`to_counts_dataarray`, keeping the columns whose bitstring fits ``pattern``.

        ``pattern`` has ``0``/``1`` for exact bits and ``*`` for either, is written in
        ``endianness`` and is as long as the bitstrings (after padding, with "pad"). See
        :func:`oqc_trio.dataarray_utils.filter_counts_dataarray`.
        """
        from .dataarray_utils import filter_counts_dataarray, results_to_counts_dataarray

        counts = results_to_counts_dataarray(
            self._results_warning_on_errors(),
            creg,
            endianness=endianness,
            on_length_mismatch=on_length_mismatch,
        )
        return filter_counts_dataarray(counts, pattern)

    # --- attribute delegation ----------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        """Read ``name`` from the single item, or per :attr:`attr_policy` when several."""
        # ``_items`` is missing only mid-construction or during copy/unpickling; delegating
        # then would recurse forever.
        if name == "_items" or not self._items:
            raise AttributeError(f"'JobOutputProxy' object has no attribute {name!r}")
        first = self._items[0]
        if self.is_single_instance or self.attr_policy is AttrPolicy.FIRST:
            return getattr(first, name)
        if self.attr_policy is AttrPolicy.WARN_FIRST:
            warnings.warn(
                f"JobOutputProxy.{name} read with {len(self._items)} items: "
                "returning the first item's value",
                UserWarning,
                stacklevel=2,
            )
            return getattr(first, name)
        if not hasattr(first, name):
            raise AttributeError(f"'JobOutputProxy' object has no attribute {name!r}")
        raise AttributeError(
            f"JobOutputProxy.{name} is ambiguous: the proxy holds {len(self._items)} outputs. "
            "Use .one, .first, .last, indexing, iteration or map()/filter(), or set "
            "attr_policy to AttrPolicy.FIRST or AttrPolicy.WARN_FIRST"
        )

    def __repr__(self) -> str:
        return f"JobOutputProxy({self._items!r}, attr_policy={self.attr_policy.name})"
