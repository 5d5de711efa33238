"""Proves or refutes properties of a graph. Imports generators, never fuzz."""
