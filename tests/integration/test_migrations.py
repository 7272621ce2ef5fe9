"""The Alembic migrations build exactly the schema the code maps: a model change without a migration
fails here, on SQLite and on PostgreSQL."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ipoa.adapters.orm import metadata


def test_migrations_match_the_mapped_tables(services):
    with services.db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
