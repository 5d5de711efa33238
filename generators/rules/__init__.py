"""Operator rules inferred from API traces (NeuRI-style): the trace format, probing
mutations, rule inference and files, and the rule-backed operators built from them."""
