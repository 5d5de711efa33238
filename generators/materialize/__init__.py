"""Graph -> framework models. Each submodule imports its framework; this package does not."""
