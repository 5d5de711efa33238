"""Runs, compares, searches and reports. Imports generators, never verify."""
