"""The exception hierarchy of carrier_sla.

Every error the library raises on purpose derives from CarrierSlaError and carries
structured attributes (file, column, plan path ...) besides its message, so the CLI
can map it to an exit code and a caller can act on it without parsing text.
"""

from __future__ import annotations

from dataclasses import dataclass


class CarrierSlaError(Exception):
    """Base class of every error raised on purpose by carrier_sla."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # pickled whole (message and attributes), whatever the subclass's __init__ takes: errors
        # raised in a Dask worker's task reach the run as they were raised
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(kind: type[CarrierSlaError], args: tuple, state: dict) -> CarrierSlaError:
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


@dataclass(frozen=True, order=True)
class PlanProblem:
    """One problem in a plan: where (a JSON pointer) and what."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class PlanError(CarrierSlaError, ValueError):
    """A plan that cannot be loaded or breaks the schema; lists every problem found."""

    def __init__(self, source: str, problems: list[PlanProblem]):
        self.source = source
        self.problems = sorted(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"plan {source}: {len(self.problems)} problem(s)\n{lines}")


class HolidaysNotListed(PlanError):
    """Records reach years whose holidays the plan does not list, so their business days are
    unknown (carrier_sla.engine.holiday_years); `years` names them, ascending."""

    def __init__(self, source: str, problems: list[PlanProblem], years: list[int]):
        self.years = tuple(sorted(set(years)))
        super().__init__(source, problems)


class UsageError(CarrierSlaError, ValueError):
    """A wrong argument (period format, unknown option value ...)."""


class InputDataError(CarrierSlaError):
    """Input that cannot be used at all: a missing file or column, unreadable data."""

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None):
        self.file = file
        self.column = column
        super().__init__(message)


class RejectRateExceeded(InputDataError):
    """Too many rows of a record type were rejected for the results to be trusted."""

    def __init__(self, record_type: str, rejected: int, read: int, limit: float):
        self.record_type = record_type
        self.rejected = rejected
        self.read = read
        self.limit = limit
        share = rejected / read if read else 0.0
        super().__init__(
            f"{record_type}: {rejected:,} of {read:,} rows rejected ({share:.2%}), "
            f"above the limit of {limit:.2%} (--max-reject-rate); nothing published, "
            "see the rejects written under the run's folder"
        )


class NoRecords(InputDataError):
    """A record type the plan's measures need has no record for the run's month (a final run) or
    none at all (a month-to-date run): an export that failed, unless the month truly has none
    (--allow-empty)."""

    def __init__(self, message: str, *, record_type: str, period: str, file: str | None = None):
        self.record_type = record_type
        self.period = period
        super().__init__(message, file=file)


class StoreError(CarrierSlaError):
    """The output store cannot be written or read as expected."""


class StoreBusy(StoreError):
    """Another run holds the store's lock: exactly one writer at a time."""

    def __init__(self, store: str, holder: str):
        self.store = store
        self.holder = holder
        super().__init__(f"{store} is in use by another run ({holder or 'holder unknown'}); try again when it ends")


class StoreDamaged(StoreError):
    """Published files or records of the store are missing, truncated or unreadable
    (carrier_sla.store.verify); `problems` lists what was found, `store` where."""

    def __init__(self, store: str, problems: list[str], hint: str = ""):
        self.store = store
        self.problems = tuple(problems)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        tail = f"; {hint}" if hint else ""
        super().__init__(f"{store} is damaged: {problems[0]}{more}{tail}")


class WorkerLost(CarrierSlaError):
    """A Dask worker died while it held a task of the run, more often than the scheduler retries
    (distributed.scheduler.allowed-failures): the run fails and publishes nothing (exit 5)."""
