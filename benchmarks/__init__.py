"""Benchmarks and their shared helpers: measurement code that does not ship in the package."""
