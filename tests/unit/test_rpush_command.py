"""The outbox notifier packs its RPUSH itself (adapters/rq_queue.rpush_command): byte for byte what redis-py
would send for the same command."""
from hypothesis import given
from hypothesis import strategies as st
from redis.connection import Connection

from ipoa.adapters.rq_queue import OUTBOX_LIST, rpush_command


def _redis_py(key: str, values: list[str]) -> bytes:
    return b"".join(Connection().pack_command("RPUSH", key, *values))


def test_an_outbox_id_is_packed_as_redis_py_packs_it():
    ids = ["0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000", "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0001"]
    assert rpush_command(OUTBOX_LIST, ids) == _redis_py(OUTBOX_LIST, ids)
    assert rpush_command(OUTBOX_LIST, ids[:1]).startswith(
        b"*3\r\n$5\r\nRPUSH\r\n$21\r\nipoa:outbox:committed\r\n$36\r\n")


@given(st.text(min_size=1), st.lists(st.text(), min_size=1, max_size=60))
def test_any_key_and_values_are_packed_as_redis_py_packs_them(key, values):
    # (text beyond ASCII, empty strings, and values long enough for redis-py to send in pieces)
    assert rpush_command(key, values) == _redis_py(key, values)


def test_a_long_value_is_packed_whole():
    values = ["x" * 7000, "é" * 4000]
    assert rpush_command(OUTBOX_LIST, values) == _redis_py(OUTBOX_LIST, values)
