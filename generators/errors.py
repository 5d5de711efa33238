"""The one user-facing error type and its specific kinds.

Imports nothing from Gauntlet; every package may raise these.
"""

from __future__ import annotations


class GauntletError(Exception):
    """A mistake the user can fix: bad input file, bad option, impossible request."""


class GraphError(GauntletError):
    """A graph (usually loaded from a file) is malformed or violates an operator spec."""


class GenerationError(GauntletError):
    """The generator could not satisfy the requested options (e.g. no operator fits)."""
