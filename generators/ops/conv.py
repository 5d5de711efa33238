"""Operator family `conv` (being written). No framework import."""

from __future__ import annotations

from generators.spec import OpSpec

OPS: tuple[OpSpec, ...] = ()
