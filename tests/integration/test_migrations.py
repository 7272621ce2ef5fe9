"""The Alembic migrations build exactly the schema the code maps: a model change without a migration
fails here, on SQLite and on PostgreSQL."""
from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

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


def test_the_rota_migration_turns_the_on_duty_flag_into_a_rota_and_back(svc):
    """0011 (rotas): going down puts the flag back on for everyone on a weekly shift; going up turns the
    flag into a whole-day shift on every weekday with those professionals, so they stay on duty, and drops
    the column."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from ipoa.service import rotas
    from ipoa.service.professionals import add_professional
    from tests.helpers.rota import on_duty

    nia = add_professional(svc, name="Nia", service="DN", mobile="07700 900201")
    off = add_professional(svc, name="Off", service="DN", mobile="07700 900202")
    on_duty(svc, "DN", nia)
    cfg = alembic_config(svc.db)
    try:
        command.downgrade(cfg, "0010")
        assert "rota_shifts" not in inspect(svc.db).get_table_names()
        with svc.db.connect() as conn:
            flags = {pid: bool(flag) for pid, flag in conn.execute(text("SELECT id, on_duty FROM professionals"))}
        assert flags == {nia: True, off: False}
    finally:
        command.upgrade(cfg, "head")
    assert "on_duty" not in {c["name"] for c in inspect(svc.db).get_columns("professionals")}
    with svc.db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        weekdays = conn.execute(text("SELECT weekday FROM rota_shifts WHERE service = 'DN' ORDER BY weekday"))
        assert [w for (w,) in weekdays] == list(range(7))
    for at in (datetime(2026, 12, 5, 3, 0, tzinfo=UTC), datetime(2026, 12, 9, 23, 59, tzinfo=UTC)):
        assert [p.id for p in rotas.on_duty_now(svc, "DN", at).professionals] == [nia]


def test_the_professionals_and_handover_migration_goes_down_and_up_again(svc):
    from ipoa.service.professionals import add_professional
    from tests.helpers.rota import on_duty

    nia = add_professional(svc, name="Nia", service="DN", mobile="07700 900211")
    on_duty(svc, "DN", nia)

    """0012 (professionals managed in the product, hand-overs) removes its two columns and two tables and
    adds them back; an existing professional comes back active, and nothing that refers to a professional
    is lost on the way (a table copied and dropped on SQLite would cascade to their shifts)."""
    added = {"active", "unavailable_until"}

    def columns() -> set[str]:
        return {c["name"] for c in inspect(svc.db).get_columns("professionals")}

    def tables() -> set[str]:
        return set(inspect(svc.db).get_table_names())

    assert added <= columns() and {"handover_resends", "handover_checks"} <= tables()
    cfg = alembic_config(svc.db)
    try:
        command.downgrade(cfg, "0011")
        assert not added & columns()
        assert not {"handover_resends", "handover_checks"} & tables()
        with svc.db.begin() as conn:
            conn.exec_driver_sql("INSERT INTO professionals (name, mobile, service, created_at) "
                                 "VALUES ('Migrated Nurse', '+447700900999', 'DN', '2026-12-01 09:00:00+00:00')")
    finally:
        command.upgrade(cfg, "head")
    assert added <= columns() and {"handover_resends", "handover_checks"} <= tables()
    with svc.db.connect() as conn:
        assert conn.exec_driver_sql("SELECT active FROM professionals WHERE mobile = '+447700900999'").scalar() \
            in (True, 1)
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        members = conn.exec_driver_sql("SELECT professional_id FROM rota_shift_members").scalars().all()
        assert set(members) == {nia}


def test_the_phone_legs_migration_goes_down_and_up_again(svc):
    """0013 (Twilio Voice) removes its two tables and the index on calls.caller_phone, and adds them back."""
    added = {"phone_legs", "handler_availability"}

    def tables() -> set[str]:
        return set(inspect(svc.db).get_table_names())

    def call_indexes() -> set[str]:
        return {i["name"] for i in inspect(svc.db).get_indexes("calls")}

    assert added <= tables() and "ix_calls_caller_phone" in call_indexes()
    cfg = alembic_config(svc.db)
    try:
        command.downgrade(cfg, "0012")
        assert not added & tables() and "ix_calls_caller_phone" not in call_indexes()
    finally:
        command.upgrade(cfg, "head")
    assert added <= tables() and "ix_calls_caller_phone" in call_indexes()
    with svc.db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_waiting_callers_index_goes_down_and_up_again(svc):
    """0015 adds the partial index of the callers waiting now, and removes it going down."""
    def indexes() -> set[str]:
        return {i["name"] for i in inspect(svc.db).get_indexes("phone_legs")}

    assert "ix_phone_legs_waiting" in indexes()
    cfg = alembic_config(svc.db)
    try:
        command.downgrade(cfg, "0014")
        assert "ix_phone_legs_waiting" not in indexes() and "ix_phone_legs_queue_enqueued_at" in indexes()
    finally:
        command.upgrade(cfg, "head")
    assert "ix_phone_legs_waiting" in indexes()
    with svc.db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_sms_opt_outs_migration_goes_down_and_up_again(svc):
    """0017 adds sms_opt_outs (a supervisor's STOP), and removes it going down."""
    def tables() -> set[str]:
        return set(inspect(svc.db).get_table_names())

    assert "sms_opt_outs" in tables()
    cfg = alembic_config(svc.db)
    try:
        command.downgrade(cfg, "0016")
        assert "sms_opt_outs" not in tables()
    finally:
        command.upgrade(cfg, "head")
    assert "sms_opt_outs" in tables()
    with svc.db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_dial_status_migration_goes_down_and_up_again(svc):
    """0018 adds phone_legs.dial_status (a lost dial result asked about), and removes it going down."""
    def columns() -> set[str]:
        return {c["name"] for c in inspect(svc.db).get_columns("phone_legs")}

    assert "dial_status" in columns()
    cfg = alembic_config(svc.db)
    try:
        command.downgrade(cfg, "0017")
        assert "dial_status" not in columns() and "last_status" in columns()
        # A leg answered before the column: its dial result is not asked about after the upgrade.
        with svc.db.begin() as conn:
            conn.execute(text(
                "INSERT INTO phone_legs (call_sid, centre, arrived_at, priority, menu_attempt, outcome, answered_by,"
                " answered_at, updated_at) VALUES ('CA' || :z, 'CNH', :at, false, 0, 'answered', 'handler', :at,"
                " :at)"), {"z": "0" * 32, "at": datetime(2026, 11, 1, 10, tzinfo=UTC)})
    finally:
        command.upgrade(cfg, "head")
    assert "dial_status" in columns()
    assert "ix_phone_legs_dial_pending" in {i["name"] for i in inspect(svc.db).get_indexes("phone_legs")}
    with svc.db.begin() as conn:
        assert conn.execute(text("SELECT dial_status FROM phone_legs WHERE call_sid = 'CA' || :z"),
                            {"z": "0" * 32}).scalar_one() == "unknown"
        conn.execute(text("DELETE FROM phone_legs WHERE call_sid = 'CA' || :z"), {"z": "0" * 32})
    with svc.db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_queue_joined_at_migration_goes_down_and_up_again(svc):
    """0019 adds phone_legs.queue_joined_at (when a leg joined the queue it is in: the overflow decision's
    longest wait), filled from enqueued_at, and puts the partial index of the callers waiting on it; going down
    removes the column and puts the index back on enqueued_at, as 0015 made it."""
    from sqlalchemy import text

    def columns() -> set[str]:
        return {c["name"] for c in inspect(svc.db).get_columns("phone_legs")}

    def waiting_index() -> list[str | None]:
        (index,) = (i for i in inspect(svc.db).get_indexes("phone_legs") if i["name"] == "ix_phone_legs_waiting")
        return index["column_names"]

    assert "queue_joined_at" in columns() and waiting_index() == ["queue", "queue_joined_at"]
    cfg = alembic_config(svc.db)
    try:
        command.downgrade(cfg, "0018")
        assert "queue_joined_at" not in columns() and "dial_status" in columns()
        assert waiting_index() == ["queue", "enqueued_at"]
        with svc.db.begin() as conn:  # a caller waiting, and one still at the menu, before the upgrade
            conn.exec_driver_sql(
                "INSERT INTO phone_legs (call_sid, centre, queue, priority, arrived_at, enqueued_at, menu_attempt, "
                "updated_at) VALUES ('CA-waiting', 'CNH', 'CNH', false, '2026-12-01 09:00:00+00:00', "
                "'2026-12-01 09:00:30+00:00', 1, '2026-12-01 09:00:30+00:00'), ('CA-menu', 'CNH', NULL, false, "
                "'2026-12-01 09:01:00+00:00', NULL, 1, '2026-12-01 09:01:00+00:00')")
    finally:
        command.upgrade(cfg, "head")
    assert "queue_joined_at" in columns() and waiting_index() == ["queue", "queue_joined_at"]
    with svc.db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        filled = dict(conn.execute(text("SELECT call_sid, queue_joined_at = enqueued_at FROM phone_legs "
                                        "WHERE call_sid LIKE 'CA-%'")).all())
        assert filled == {"CA-waiting": True, "CA-menu": None}
