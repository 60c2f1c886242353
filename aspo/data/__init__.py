"""Upstream datasets -> verl parquet for the ASPO paper's runs and benchmarks.

One module per source family, each a pure function from one upstream record to one verl row
(``schema.make_row``): ``math`` (training set and AIME24/25, AMC23, MATH-500, Minerva,
OlympiadBench), ``livecodebench`` (v5/v6 date windows, compressed private tests),
``verl_layout`` (files already in verl's layout, such as Archer2.0's training JSON),
``code_tests`` (the two code ground-truth formats). ``prepare`` wires loading, conversion with a
progress bar, checks and writing; ``scripts/prepare_*.py`` are its command lines.
"""

from aspo.data.schema import ConversionError, make_row, write_parquet

__all__ = ["ConversionError", "make_row", "write_parquet"]
