"""Vectors (appearance descriptors, re-id and vision-language embeddings) in the store.

Python code sees a vector as float32 little-endian ``bytes`` on every backend, so the
readers that unpack them with ``np.frombuffer`` never ask which database they run on.
On SQLite the column is a BLOB, exactly as before. On PostgreSQL it is a pgvector
``vector`` column with approximate (HNSW) indexes, so "more like this" and embedding
search are nearest-neighbour queries in SQL (:func:`nearest`) instead of full scans.

Why one untyped ``vector`` column with partial expression indexes, not one typed column
or table per kind: the embedding models are plug-ins (``search/models.json`` and
``camsight models add``), each with its own dimension, so a fixed ``vector(256)``
column cannot hold them all, and a table per model would need DDL in every reader.
An HNSW index needs a fixed dimension, so each (model, dimension) gets its own partial
index on ``(vector::vector(D))`` restricted to that model and dimension; a query that
names both and casts to ``D`` uses it. Indexes use inner-product ops (``<#>``, the negated
dot product), because camsight's similarities are dot products (re-id and
vision-language vectors are unit length, where that is the cosine). Indexes appear on
first write of a (model, dimension) (:func:`ensure_indexes`), taken under an advisory
lock so that two nodes writing their first vectors at once do not race.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, LargeBinary, bindparam, text
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

#: HNSW build parameters (pgvector's defaults): 16 links per node, candidate list of 64 while building.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
#: pgvector's range for ``hnsw.ef_search``.
EF_SEARCH_MIN, EF_SEARCH_MAX = 40, 1000
#: Tuples an iterative index scan may visit to find ``k`` rows that pass the filters (pgvector's default
#: is 20,000): a camera filter on a store of many cameras needs more than the plain top ``ef_search``.
MAX_SCAN_TUPLES = 50_000


class _PgVector(UserDefinedType[bytes]):
    """pgvector's ``vector`` (any dimension) exchanged as float32 bytes, in pgvector's text form."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "VECTOR"

    def bind_processor(self, dialect: Dialect) -> Any:
        def process(value: bytes | np.ndarray | None) -> str | None:
            if value is None:
                return None
            arr = np.frombuffer(value, "<f4") if isinstance(value, bytes | bytearray | memoryview) else value
            # Python's repr of each float32 (as a double) round-trips exactly through pgvector's strtof.
            return str(np.asarray(arr, np.float32).tolist()).replace(" ", "")

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        def process(value: str | None) -> bytes | None:
            if value is None:
                return None
            return np.fromstring(value[1:-1], dtype="<f4", sep=",").tobytes()

        return process


# Reflection (Alembic's comparison of the schema with the models) then knows the type too.
ischema_names.setdefault("vector", _PgVector)


class FloatVector(TypeDecorator[bytes]):
    """A float32 vector as little-endian bytes: a BLOB on SQLite, a pgvector ``vector`` on PostgreSQL."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_PgVector())
        return dialect.type_descriptor(LargeBinary())


@dataclass(frozen=True)
class VectorColumn:
    """Where vectors of one kind live: the table, its id and vector columns, and the rows of the kind."""

    table: str
    id_column: str
    column: str
    #: Restriction to this kind (``model = '...'``) or None when the whole column is one kind.
    model: str | None = None

    def index_name(self, dim: int) -> str:
        kind = "" if self.model is None else hashlib.sha1(self.model.encode()).hexdigest()[:10] + "_"
        return f"ix_{self.table}_{self.column}_hnsw_{kind}{dim}"

    def cast(self, dim: int, alias: str = "") -> str:
        """The indexed expression: the column at a fixed dimension."""
        return f"({_qualified(alias, self.column)}::vector({int(dim)}))"

    def predicate(self, dim: int, alias: str = "") -> str:
        """The partial index's condition, repeated in queries so the planner can use the index."""
        # The dimension too: a vector of another size cannot be cast to this one (nor compared).
        dims = f"vector_dims({_qualified(alias, self.column)}) = {int(dim)}"
        if self.model is None:
            return dims
        return f"{_qualified(alias, 'model')} = {_literal(self.model)} AND {dims}"


def appearance_column() -> VectorColumn:
    """Colour descriptors: ``tracks.appearance``."""
    return VectorColumn("tracks", "id", "appearance")


def embedding_column(model: str) -> VectorColumn:
    """One model's embeddings in ``track_embeddings.vector``."""
    return VectorColumn("track_embeddings", "track_id", "vector", model)


def _qualified(alias: str, column: str) -> str:
    return f'{alias}."{column}"' if alias else f'"{column}"'


def _literal(value: str) -> str:
    # A literal, not a bind parameter: a partial index is only used when the planner can prove
    # the query's condition implies the index's, which it cannot do for a generic parameter.
    return "'" + value.replace("'", "''") + "'"


_known: set[tuple[str, str, int]] = set()
_known_lock = threading.Lock()


def ensure_indexes(engine: Engine, wanted: Iterable[tuple[VectorColumn, int]]) -> None:
    """Create the HNSW index of each (kind, dimension) that has none yet; PostgreSQL only.

    Runs in its own short transaction before a writer's: creating an index waits for the
    table's other writers, and holding rows of our own meanwhile could deadlock with a
    node doing the same.
    """
    if engine.dialect.name != "postgresql":
        return
    url = str(engine.url)
    todo = {(c, d) for c, d in wanted if (url, c.index_name(d), d) not in _known}
    if not todo:
        return
    with engine.begin() as connection:
        for column, dim in sorted(todo, key=lambda cd: cd[0].index_name(cd[1])):
            create_index(connection, column, dim)
    with _known_lock:
        _known.update((url, c.index_name(d), d) for c, d in todo)


def create_index(connection: Connection, column: VectorColumn, dim: int) -> None:
    """``CREATE INDEX IF NOT EXISTS`` the HNSW index of ``column`` at ``dim``, serialised between nodes."""
    name = column.index_name(dim)
    exists = connection.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar()
    if exists:
        return
    if dim > 2000:  # pgvector's HNSW limit for ``vector``: such vectors are compared by full scan
        return
    # Transaction-scoped: released at commit, after the index exists.
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})
    connection.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS {name} ON {column.table} USING hnsw "
        f"({column.cast(dim)} vector_ip_ops) WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
        f"WHERE {column.predicate(dim)}"
    )


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's filter: the HNSW indexes are made per (kind, dimension) at run time, not by the models."""
    return not (type_ == "index" and name is not None and "_hnsw_" in name)


def ef_search(k: int) -> int:
    """``hnsw.ef_search`` for ``k`` results: the candidate list must be at least as long as the answer."""
    return max(EF_SEARCH_MIN, min(EF_SEARCH_MAX, 2 * k))


def search_settings(connection: Connection, k: int) -> None:
    """``SET LOCAL`` the HNSW search settings for ``k`` results (inside a transaction)."""
    # Iterative scans keep walking the graph until k rows pass the filters (camera, label,
    # time), instead of filtering only the first ef_search neighbours and returning too few.
    connection.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {ef_search(k)}")
    connection.exec_driver_sql("SET LOCAL hnsw.iterative_scan = relaxed_order")
    connection.exec_driver_sql(f"SET LOCAL hnsw.max_scan_tuples = {MAX_SCAN_TUPLES}")


def nearest_sql(column: VectorColumn, dim: int, where: str = "") -> str:
    """The nearest-neighbour statement of :func:`nearest` (parameters ``:q``, ``:k`` and ``where``'s)."""
    alias = "t" if column.table == "tracks" else "v"
    distance = f"{column.cast(dim, alias)} <#> CAST(:q AS vector({dim}))"
    join = "" if column.table == "tracks" else f"JOIN tracks t ON t.id = v.{column.id_column}"
    extra = f"AND ({where})" if where else ""
    return (
        # relaxed_order may return rows slightly out of order: the materialised CTE takes the
        # neighbours, the outer ORDER BY puts them in exact order (pgvector's documented pattern).
        f"WITH near AS MATERIALIZED (SELECT {alias}.{column.id_column} AS id, {distance} AS d "
        f"FROM {column.table} {alias} {join} WHERE {column.predicate(dim, alias)} {extra} "
        f"ORDER BY {distance} LIMIT :k) SELECT id, d FROM near ORDER BY d, id"
    )


def nearest(
    connection: Connection,
    column: VectorColumn,
    query: np.ndarray,
    k: int,
    *,
    where: str = "",
    params: dict[str, Any] | None = None,
    farthest: bool = False,
    expanding: tuple[str, ...] = (),
) -> list[tuple[int, float]]:
    """The ``k`` rows of ``column`` with the highest dot product with ``query``, best first; PostgreSQL only.

    ``where`` adds SQL conditions on ``t`` (the ``tracks`` row of each vector) with ``params``
    (``expanding``: those that are lists, for ``IN :name``).
    ``farthest`` gives the lowest instead (the nearest to ``-query``: same index). Run inside a
    transaction: the search settings are ``SET LOCAL``. Returns ``(track id, similarity)`` pairs.
    """
    dim = len(query)
    search_settings(connection, k)
    sql = nearest_sql(column, dim, where)
    vec = (-query if farthest else query).astype(np.float32)
    q = _PgVector().bind_processor(connection.dialect)(vec)
    statement = text(sql).bindparams(*(bindparam(name, expanding=True) for name in expanding))
    rows = connection.execute(statement, {"q": q, "k": k, **(params or {})})
    sign = 1.0 if farthest else -1.0  # <#> is the negated dot product
    return [(int(i), sign * float(d)) for i, d in rows]
