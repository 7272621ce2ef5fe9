"""The Alembic migrations build exactly the schema the code maps: a model change without a migration
fails here, on SQLite and on PostgreSQL."""
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from ipoa.adapters.db import alembic_config
from ipoa.adapters.orm import metadata


def test_migrations_match_the_mapped_tables(services):
    with services.db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_the_address_migration_goes_down_and_up_again(services):
    """0009 (the call's address for a visit) removes its two columns on downgrade and adds them back."""
    def columns() -> set[str]:
        return {c["name"] for c in inspect(services.db).get_columns("calls")}

    assert {"address_line_1", "town"} <= columns()
    cfg = alembic_config(services.db)
    try:
        command.downgrade(cfg, "0008")
        assert not {"address_line_1", "town"} & columns()
        assert "postcode" in columns()
    finally:
        command.upgrade(cfg, "head")
    assert {"address_line_1", "town"} <= columns()
    with services.db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_text_follow_up_migration_goes_down_and_up_again(services):
    """0010 (a supervisor's follow-up of a text not delivered) removes its three columns and adds them back."""
    added = {"followed_up_at", "followed_up_by", "follow_up_note"}

    def columns() -> set[str]:
        return {c["name"] for c in inspect(services.db).get_columns("sms_messages")}

    assert added <= columns()
    cfg = alembic_config(services.db)
    try:
        command.downgrade(cfg, "0009")
        assert not added & columns()
        assert "delivered_at" in columns()
    finally:
        command.upgrade(cfg, "head")
    assert added <= columns()
    with services.db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
