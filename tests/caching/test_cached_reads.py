"""Every table says how its changes reach the fingerprint of cached reads, so a new table that
feeds a cached view cannot be forgotten (it would be served stale)."""

import service.models  # noqa: F401  (every model, as the application has them)
from service.caching import fingerprint_statement
from service.db import Base, CachedReads


def test_every_table_says_how_cached_reads_see_it() -> None:
    for table in Base.metadata.tables.values():
        kind = table.info.get("cached_reads")
        assert isinstance(kind, CachedReads), f"{table.name}: add cached_reads(…) to it"
        if kind is CachedReads.VERSIONED:
            assert "version" in table.c, table.name


def test_the_fingerprint_counts_what_tables_declare() -> None:
    declared = {table.name: table.info["cached_reads"] for table in Base.metadata.tables.values()}
    parts = sum(
        {CachedReads.VERSIONED: 2, CachedReads.APPENDED: 1}.get(kind, 0)
        for kind in declared.values()
    )
    assert len(fingerprint_statement().selected_columns) == parts
    sql = str(fingerprint_statement())
    for name, kind in declared.items():
        shown = kind in (CachedReads.VERSIONED, CachedReads.APPENDED)
        assert (f"FROM {name}" in sql) == shown, name
