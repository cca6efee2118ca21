"""carrier_sla: checks ILEC/CLEC wholesale performance data against a Performance Assurance
Plan and writes a Parquet audit store.

The Python API (carrier_sla.api), loaded on first use so that `import carrier_sla` stays cheap:

    import carrier_sla as csla
    result = csla.run(plan="example-qc", data="demo-data", period="2026-10", out="store")
    csla.open_store("store").results("2026-10")   # a pandas DataFrame

run, generate, open_store, load_plan, StoreView, and the errors the command line maps to its exit
codes: CarrierSlaError (the base of all), PlanError, UsageError (exit 2), InputError (= InputDataError,
exit 3), StoreBusy (4), StoreError and StoreDamaged (5), RejectRateExceeded, NoRecords, HolidaysNotListed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {"run": "carrier_sla.api", "generate": "carrier_sla.api", "open_store": "carrier_sla.store.view",
        "StoreView": "carrier_sla.store.view", "load_plan": "carrier_sla.plan.load"}  # fmt: skip
_ERRORS = ("CarrierSlaError", "PlanError", "PlanProblem", "UsageError", "InputDataError", "RejectRateExceeded",
           "NoRecords", "StoreError", "StoreBusy", "StoreDamaged", "HolidaysNotListed")  # fmt: skip
_ALIASES = {"InputError": "InputDataError"}

__all__ = [  # _API, _ERRORS and _ALIASES, spelled out for the tools that read __all__
    "CarrierSlaError", "HolidaysNotListed", "InputDataError", "InputError", "NoRecords", "PlanError", "PlanProblem",
    "RejectRateExceeded", "StoreBusy", "StoreDamaged", "StoreError", "StoreView", "UsageError", "__version__",
    "generate", "load_plan", "open_store", "run",
]  # fmt: skip

if TYPE_CHECKING:
    from carrier_sla.api import generate, run
    from carrier_sla.errors import (
        CarrierSlaError,
        HolidaysNotListed,
        InputDataError,
        NoRecords,
        PlanError,
        PlanProblem,
        RejectRateExceeded,
        StoreBusy,
        StoreDamaged,
        StoreError,
        UsageError,
    )
    from carrier_sla.errors import InputDataError as InputError
    from carrier_sla.plan.load import load_plan
    from carrier_sla.store.view import StoreView, open_store


def __getattr__(name: str) -> Any:
    """The API's names, imported when first asked for (the errors module is light; the rest loads pandas)."""
    import importlib

    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
    elif name in _ERRORS or name in _ALIASES:
        value = getattr(importlib.import_module("carrier_sla.errors"), _ALIASES.get(name, name))
    else:
        raise AttributeError(f"module 'carrier_sla' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
