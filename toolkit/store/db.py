"""The results store: one SQLite file in WAL mode.

Tables
------
``runs``          one row per command invocation (convert, profile, synthesize, ...)
``models``        one row per model artifact, keyed by the SHA-256 of its bytes
``measurements``  one row per profile of a model on a target, with provenance
``candidates``    one row per synthesis candidate (written by ``toolkit.synthesis``)

Every write is one transaction, so an error mid-command leaves nothing half-written.

A store is recognised before anything is written to it: its ``application_id`` is :data:`APPLICATION_ID` and
its ``user_version`` the schema version (stores written before the version was stamped are recognised by their
``meta`` table and tables, and stamped on their next write). Any other SQLite database is refused and left
byte for byte as it was; a store of a newer schema asks for a newer ferminet. An existing store is opened
read-only (``mode=ro``) and reopened for writing only when something is written, so read-only stores can be
reported on.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from toolkit.errors import StoreError
from toolkit.provenance import tool_versions
from toolkit.targets.base import Measurement

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
APPLICATION_ID = 0x46524D4E  # "FRMN" in the SQLite header: this file is a ferminet results store
_TABLES = frozenset({"meta", "runs", "models", "measurements", "candidates"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT,
    command TEXT,
    options_json TEXT NOT NULL DEFAULT '{}',
    tool_versions_json TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'running',
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT PRIMARY KEY,
    run_id TEXT REFERENCES runs(run_id),
    name TEXT,
    path TEXT,
    format TEXT NOT NULL,
    quantization TEXT,
    size_kb REAL,
    macs INTEGER,
    params INTEGER,
    dataset TEXT,
    keras_top1 REAL,
    tflite_top1 REAL,
    accuracy_drop_pt REAL,
    eval_samples INTEGER,
    spec_json TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    measurement_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT REFERENCES runs(run_id),
    model_id TEXT NOT NULL,
    model_path TEXT,
    target TEXT NOT NULL,
    device TEXT NOT NULL,
    source TEXT NOT NULL,
    num_threads INTEGER,
    delegate TEXT,
    init_ms REAL, first_inference_ms REAL,
    mean_ms REAL, median_ms REAL, p90_ms REAL, std_ms REAL, min_ms REAL, max_ms REAL,
    count INTEGER,
    process_peak_memory_mb REAL,
    size_kb REAL,
    macs INTEGER,
    energy_mj REAL,
    inferences_per_j REAL,
    avg_power_mw REAL,
    energy_method TEXT,
    energy_source TEXT,
    energy_uncertainty_mj REAL,
    energy_below_resolution INTEGER NOT NULL DEFAULT 0,
    energy_resolution_mj REAL,
    memory_increment_mb REAL,
    p95_ms REAL,
    delegate_requested TEXT,
    delegate_fallback INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    options_json TEXT NOT NULL DEFAULT '{}',
    provenance_json TEXT NOT NULL DEFAULT '{}',
    samples_json TEXT NOT NULL DEFAULT '[]',
    op_profile_json TEXT NOT NULL DEFAULT '[]',
    rails_json TEXT NOT NULL DEFAULT '[]',
    trace_json TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS candidates (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    candidate_id TEXT NOT NULL,
    cycle INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    seed INTEGER,
    parent TEXT,
    spec_hash TEXT,
    spec_json TEXT,
    status TEXT NOT NULL,
    failure_reason TEXT,
    float_top1 REAL,
    int8_top1 REAL,
    macs INTEGER,
    params INTEGER,
    size_kb REAL,
    latency_ms REAL,
    energy_mj REAL,
    energy_source TEXT,
    latency_source TEXT,
    score REAL,
    requirements_met INTEGER,
    model_id TEXT,
    phase TEXT,
    top1_split TEXT,
    test_top1 REAL,
    test_requirements_met INTEGER,
    proxy_top1 REAL,
    extra_json TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, candidate_id)
);
CREATE INDEX IF NOT EXISTS measurements_model ON measurements(model_id);
CREATE INDEX IF NOT EXISTS candidates_run ON candidates(run_id, cycle);
"""


def _schema_columns() -> dict[str, list[tuple[str, str]]]:
    """{table: [(column, its definition for ALTER TABLE ADD COLUMN)]} of the current schema."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(_SCHEMA)
        out = {}
        for (table,) in mem.execute("SELECT name FROM sqlite_master WHERE type='table' AND name != 'sqlite_sequence'"):
            cols = []
            for _, name, type_, notnull, default, pk in mem.execute(f"PRAGMA table_info({table})"):
                if pk:
                    continue
                spec = f"{name} {type_}".strip()
                if default is not None:
                    spec += f" DEFAULT {default}"
                if notnull and default is not None:
                    spec += " NOT NULL"
                cols.append((name, spec))
            out[table] = cols
        return out
    finally:
        mem.close()


def _missing_columns(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Columns of the current schema that the store's existing tables lack (added by later releases)."""
    missing = []
    for table, cols in _schema_columns().items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if have:
            missing += [(table, spec) for name, spec in cols if name not in have]
    return missing


@dataclass(frozen=True)
class ModelRecord:
    """A model artifact as the store knows it. ``model_id`` is the SHA-256 of the file."""

    model_id: str
    path: str
    format: str  # "tflite" | "keras"
    name: str = ""
    quantization: str | None = None  # int8 | fp16 | dynamic | fp32
    size_kb: float | None = None
    macs: int | None = None
    params: int | None = None
    dataset: str | None = None
    keras_top1: float | None = None
    tflite_top1: float | None = None
    accuracy_drop_pt: float | None = None
    eval_samples: int | None = None
    spec_json: str | None = None


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class Store:
    """A handle on one SQLite results file.

    >>> with Store("ferminet.db") as store:          # doctest: +SKIP
    ...     run_id = store.start_run("profile", command="ferminet profile m.tflite")
    """

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0):
        self.path = check_store_path(path)
        self._timeout_s = timeout_s
        self._writable = False
        if self.path.is_file() and self.path.stat().st_size > 0:
            # An existing file: look before touching. The probe creates no -wal/-shm and writes nothing.
            probe = self._connect_probe()
            try:
                self._check_is_store(probe)
            finally:
                probe.close()
            # Ours. Read through a plain connection when we could write (SQLite then tidies its -wal/-shm
            # files on close); read-only (mode=ro) otherwise. Writes reopen read-write (_make_writable).
            self._rw = self._can_write()
            self._conn = self._connect(readonly=not self._rw)
        else:
            self._conn = self._connect(readonly=False)
            self._rw = True
            self._make_writable()

    def _can_write(self) -> bool:
        return os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)

    def _connect_probe(self) -> sqlite3.Connection:
        """A connection that only looks: immutable (no locks, no side files) unless a -wal file holds pages."""
        wal = Path(f"{self.path}-wal")
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        if not (wal.is_file() and wal.stat().st_size > 0):
            uri += "&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self._timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return conn

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        try:
            if readonly:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=self._timeout_s, isolation_level=None)
                try:
                    conn.execute("PRAGMA schema_version").fetchone()
                except sqlite3.OperationalError as exc:
                    wal = Path(f"{self.path}-wal")
                    if "unable to open" not in str(exc) or (wal.is_file() and wal.stat().st_size > 0):
                        raise
                    # A WAL store in a read-only folder: SQLite cannot make its -shm file. With no -wal file
                    # every page is in the main file, and nobody can write there: read it as immutable.
                    conn.close()
                    conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, timeout=self._timeout_s,
                                           isolation_level=None)
            else:
                conn = sqlite3.connect(str(self.path), timeout=self._timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc, writing=not readonly) from exc
        conn.row_factory = sqlite3.Row
        return conn

    def _error(self, exc: sqlite3.Error, writing: bool = False) -> StoreError:
        """A StoreError that says what is wrong: locked, read-only, unreadable, or not a store."""
        text = str(exc)
        p = str(self.path)
        if "locked" in text or "busy" in text:
            return StoreError(f"The results store {p!r} is locked by another process ({text}); wait for it to "
                              f"finish, or pass another --db")
        if "readonly" in text or "read-only" in text or (writing and not (
                os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK))):
            return StoreError(f"The results store {p!r} is read-only ({text}); make it and its folder writable "
                              f"(chmod u+w), or pass another --db")
        if "unable to open" in text:
            return StoreError(f"The results store {p!r} cannot be opened ({text}); check its permissions, or pass "
                              f"another --db")
        return StoreError(f"{p!r} is not a ferminet results store ({text}). Pass another --db")

    def _check_is_store(self, conn: sqlite3.Connection, writing: bool = False) -> None:
        """Refuse (changing nothing) a database that is not a ferminet store, or one of a newer schema."""
        p = str(self.path)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.Error as exc:
            raise self._error(exc, writing) from exc
        if app_id == APPLICATION_ID:
            if version > SCHEMA_VERSION:
                from toolkit import __version__

                raise StoreError(
                    f"The results store {p!r} has schema version {version}, written by a newer ferminet; this "
                    f"ferminet {__version__} reads up to version {SCHEMA_VERSION}. Upgrade ferminet "
                    f"(pip install -U ferminet-toolkit), or pass another --db")
            return
        if app_id == 0 and not tables - {"sqlite_sequence"}:
            return  # an empty SQLite file holds nothing to lose: it becomes a store on first write
        legacy = app_id == 0 and version == 0 and _TABLES <= tables
        if legacy:
            try:
                legacy = bool(conn.execute("SELECT 1 FROM meta WHERE key='schema_version'").fetchone())
            except sqlite3.Error:
                legacy = False
        if not legacy:
            own = ", ".join(sorted(tables - {"sqlite_sequence"})[:4]) or "none"
            raise StoreError(
                f"{p!r} is a SQLite database but not a ferminet results store (its tables: {own}); it was left "
                f"unchanged. Pass another --db (a new file name creates a store)")

    def _make_writable(self) -> None:
        """Switch to a read-write connection and bring the schema up to date (idempotent)."""
        if self._writable:
            return
        if not self._rw:
            self._conn.close()
            self._conn = self._connect(readonly=False)
            self._rw = True
        self._check_is_store(self._conn, writing=True)  # it may have changed since it was opened
        try:
            self._conn.execute("PRAGMA foreign_keys=ON")
            missing = _missing_columns(self._conn)
            if missing or self._conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION or \
                    self._conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    # One statement at a time: executescript() would COMMIT this transaction half-way.
                    statements = [st for st in _SCHEMA.split(";") if st.strip()]
                    for stmt in statements:
                        if "CREATE INDEX" not in stmt:
                            self._conn.execute(stmt)
                    for table, column_sql in _missing_columns(self._conn):  # a store of an older release
                        self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column_sql}")
                    for stmt in statements:  # indexes last: they may name a column just added
                        if "CREATE INDEX" in stmt:
                            self._conn.execute(stmt)
                    self._conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                                       (str(SCHEMA_VERSION),))
                    self._conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self._conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            raise self._error(exc, writing=True) from exc
        self._writable = True

    def check_writable(self) -> None:
        """Raise a StoreError now (before any measuring) when nothing could be written to this store."""
        self._make_writable()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:  # a real write, rolled back: BEGIN alone succeeds on a file SQLite opened read-only
                self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('write_check', '1')")
            finally:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise self._error(exc, writing=True) from exc

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside lands, or nothing does."""
        self._make_writable()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(exc, writing=True) from exc
        try:
            yield self._conn
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and any(
                    w in str(exc) for w in ("locked", "busy", "readonly")):
                raise self._error(exc, writing=True) from exc
            raise
        else:
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise self._error(exc, writing=True) from exc

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return list(self._conn.execute(sql, params))

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, kind: str, command: str = "", options: dict | None = None, name: str | None = None,
                  run_id: str | None = None) -> str:
        """Record a new run and return its id (``<kind>-<time>-<random>`` unless given)."""
        run_id = run_id or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO runs(run_id, kind, name, command, options_json, tool_versions_json, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, kind, name, command, _dumps(options or {}), _dumps(tool_versions()), time.time()),
            )
        return run_id

    def finish_run(self, run_id: str, status: str = "done") -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET status=?, finished_at=? WHERE run_id=?", (status, time.time(), run_id))

    def get_run(self, run_id: str) -> sqlite3.Row:
        rows = self.query("SELECT * FROM runs WHERE run_id=? OR name=? ORDER BY created_at DESC", (run_id, run_id))
        if not rows:
            known = [r["run_id"] for r in self.query("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 5")]
            raise StoreError(
                f"No run {run_id!r} in {str(self.path)!r}. Recent runs: {', '.join(known) or 'none'}"
            )
        return rows[0]

    # -- models and measurements ------------------------------------------------------------
    def add_model(self, record: ModelRecord, run_id: str | None = None) -> str:
        """Insert or refresh a model row; returns its id."""
        with self.transaction() as conn:
            self._upsert_model(conn, record, run_id)
        return record.model_id

    def _upsert_model(self, conn: sqlite3.Connection, record: ModelRecord, run_id: str | None) -> None:
        values = dataclasses.asdict(record)
        existing = conn.execute("SELECT 1 FROM models WHERE model_id=?", (record.model_id,)).fetchone()
        if existing:
            # Later facts (accuracy from a conversion, MACs) fill in; never erase what is known.
            sets = [f"{k}=COALESCE(?, {k})" for k in values if k != "model_id"]
            conn.execute(
                f"UPDATE models SET {', '.join(sets)} WHERE model_id=?",
                [values[k] for k in values if k != "model_id"] + [record.model_id],
            )
        else:
            cols = list(values) + ["run_id", "created_at"]
            conn.execute(
                f"INSERT INTO models({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                list(values.values()) + [run_id, time.time()],
            )

    def add_measurement(self, measurement: Measurement, run_id: str | None = None,
                        model: ModelRecord | None = None) -> int:
        """Store one Measurement (and its model row) atomically; returns the measurement id."""
        with self.transaction() as conn:
            return self._insert_measurement(conn, measurement, run_id, model)

    def record_run(self, kind: str, command: str = "", options: dict | None = None, *,
                   models: tuple[ModelRecord, ...] = (), measurements: tuple[Measurement, ...] = (),
                   name: str | None = None) -> str:
        """A finished run with its models and measurements, in one transaction (all or nothing)."""
        run_id = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO runs(run_id, kind, name, command, options_json, tool_versions_json, status,"
                " created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, 'done', ?, ?)",
                (run_id, kind, name, command, _dumps(options or {}), _dumps(tool_versions()), now, now),
            )
            by_id = {m.model_id: m for m in models}
            for record in models:
                self._upsert_model(conn, record, run_id)
            for m in measurements:
                self._insert_measurement(conn, m, run_id, by_id.get(m.model_sha256))
        return run_id

    def _insert_measurement(self, conn: sqlite3.Connection, m: Measurement, run_id: str | None,
                            model: ModelRecord | None) -> int:
        e = m.energy
        lat = m.latency
        row = {
            "run_id": run_id,
            "model_id": m.model_sha256,
            "model_path": m.model_path,
            "target": m.target,
            "device": m.device,
            "source": m.source,
            "num_threads": m.options.num_threads,
            "delegate": m.delegate,  # the delegate that ran: the numbers belong to it
            "delegate_requested": m.options.delegate,
            "delegate_fallback": int(m.delegate_fallback),
            "init_ms": lat.init_ms,
            "first_inference_ms": lat.first_inference_ms,
            "mean_ms": lat.mean_ms,
            "median_ms": lat.median_ms,
            "p90_ms": lat.p90_ms,
            "p95_ms": lat.p95_ms,
            "std_ms": lat.std_ms,
            "min_ms": lat.min_ms,
            "max_ms": lat.max_ms,
            "count": lat.count,
            "process_peak_memory_mb": m.process_peak_memory_mb,
            "memory_increment_mb": m.memory_increment_mb,
            "size_kb": m.size_kb,
            "macs": m.macs,
            "energy_mj": e.energy_per_inference_mj if e else None,
            "inferences_per_j": e.inferences_per_joule if e else None,
            "avg_power_mw": e.avg_power_mw if e else None,
            "energy_method": e.method if e else None,
            "energy_source": e.source if e else None,
            "energy_uncertainty_mj": e.uncertainty_mj if e else None,
            # Below resolution: energy_mj and inferences_per_j are NULL, the bound is energy_resolution_mj.
            "energy_below_resolution": int(e.below_resolution) if e else 0,
            "energy_resolution_mj": e.resolution_mj if e else None,
            "throttled": int(m.throttled),
            "options_json": _dumps(dataclasses.asdict(m.options)),
            "provenance_json": _dumps(m.provenance_dict()),
            "samples_json": _dumps(list(lat.samples_ms)),
            "op_profile_json": _dumps([dataclasses.asdict(o) for o in m.op_profile]),
            "rails_json": _dumps([dataclasses.asdict(r) for r in e.rails] if e else []),
            "trace_json": _dumps([[s.t_s, s.power_mw] for s in e.trace] if e else []),
            "created_at": time.time(),
        }
        model = model or ModelRecord(
            model_id=m.model_sha256, path=m.model_path, format="tflite", name=Path(m.model_path).stem,
            size_kb=m.size_kb, macs=m.macs,
        )
        self._upsert_model(conn, model, run_id)
        cur = conn.execute(
            f"INSERT INTO measurements({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
        return int(cur.lastrowid)


def check_store_path(path: str | Path) -> Path:
    """Fail early, before any work, when ``path`` cannot hold a results store."""
    p = Path(path)
    if p.is_dir():
        raise StoreError(f"The store path is a directory. Received: db={str(p)!r}; pass a file path")
    if not p.parent.exists():
        raise StoreError(f"The store's folder does not exist. Received: db={str(p)!r}; create {str(p.parent)!r} first")
    if p.is_file():
        with open(p, "rb") as fh:
            head = fh.read(16)
        if head and head != b"SQLite format 3\x00":
            raise StoreError(f"{str(p)!r} is not a SQLite results store. Pass another --db")
    return p


def check_store_writable(path: str | Path) -> Path:
    """Fail before any work (a measurement, a conversion) whose result could not be recorded in ``path``:
    not a ferminet store, a newer schema, read-only, or locked. Creates nothing."""
    p = check_store_path(path)
    if p.is_file():
        with Store(p, timeout_s=5.0) as store:
            store.check_writable()
    elif not os.access(p.parent, os.W_OK):
        raise StoreError(f"The store's folder is read-only. Received: db={str(p)!r}; pass a --db in a writable folder")
    return p


def _read_table(db: str | Path, sql: str, params: tuple = ()):
    import pandas as pd

    path = Path(db)
    if not path.is_file():
        raise StoreError(f"No results store at {str(path)!r}. Run `ferminet profile` or `ferminet convert` first, or pass --db")
    with Store(path) as store:
        return pd.read_sql_query(sql, store._conn, params=params)


def read_measurements(db: str | Path = "ferminet.db", run_id: str | None = None):
    """Every measurement joined with its model, as a pandas DataFrame (one row per profile)."""
    sql = (
        "SELECT m.*, mo.name AS model_name, mo.quantization, mo.params, mo.dataset, mo.keras_top1,"
        " mo.tflite_top1, mo.accuracy_drop_pt FROM measurements m LEFT JOIN models mo USING(model_id)"
    )
    if run_id:
        return _read_table(db, sql + " WHERE m.run_id=? ORDER BY m.measurement_id", (run_id,))
    return _read_table(db, sql + " ORDER BY m.measurement_id")


def read_models(db: str | Path = "ferminet.db"):
    """Every model artifact the store knows, as a DataFrame."""
    return _read_table(db, "SELECT * FROM models ORDER BY created_at")


def read_runs(db: str | Path = "ferminet.db"):
    """Every run, newest last, as a DataFrame."""
    return _read_table(db, "SELECT * FROM runs ORDER BY created_at")


def read_candidates(db: str | Path = "ferminet.db", run_id: str | None = None):
    """Synthesis candidates (optionally of one run), as a DataFrame."""
    if run_id:
        return _read_table(db, "SELECT * FROM candidates WHERE run_id=? ORDER BY cycle, created_at", (run_id,))
    return _read_table(db, "SELECT * FROM candidates ORDER BY run_id, cycle, created_at")
