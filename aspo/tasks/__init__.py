"""Procedurally generated tasks (train/validation parquet in verl's layout, plus their rewards)."""
