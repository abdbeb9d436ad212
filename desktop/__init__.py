"""Bondscope: a desktop lab for the molecular structure of long chain-of-thought reasoning."""

from bondscope.domain import (
    BEHAVIORS,
    BOND_TYPES,
    Behavior,
    Bond,
    BondType,
    InputError,
    Label,
    Step,
    Trace,
)
from bondscope.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "BEHAVIORS",
    "BOND_TYPES",
    "Behavior",
    "Bond",
    "BondType",
    "InputError",
    "Label",
    "Step",
    "Trace",
    "hookimpl",
    "__version__",
]
