"""SQLite results store (WAL) and pandas views of it."""
from toolkit.store.db import (
    ModelRecord,
    Store,
    check_store_path,
    check_store_writable,
    read_candidates,
    read_measurements,
    read_models,
    read_runs,
)

__all__ = ["ModelRecord", "Store", "check_store_path", "check_store_writable", "read_candidates", "read_measurements", "read_models", "read_runs"]
