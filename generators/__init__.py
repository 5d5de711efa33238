"""What a model is (the graph IR), the operator catalog, and how graphs and inputs are made.

The foundation package: imports neither `fuzz` nor `verify`, and no framework at import.
"""

from generators.dtypes import DType
from generators.errors import GauntletError, GenerationError, GraphError
from generators.graph_gen import GenOptions, GraphGenerator, generate_graph
from generators.instantiate import Limits
from generators.ir import Graph, Node, Placeholder, TensorType, graph_from_json, validate
from generators.ops import catalog

__all__ = [
    "DType",
    "GauntletError",
    "GenOptions",
    "GenerationError",
    "Graph",
    "GraphError",
    "GraphGenerator",
    "Limits",
    "Node",
    "Placeholder",
    "TensorType",
    "catalog",
    "generate_graph",
    "graph_from_json",
    "validate",
]
