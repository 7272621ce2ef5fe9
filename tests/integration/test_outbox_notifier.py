"""The outbox notifier sends committed ids without waiting for Redis's answer (adapters/rq_queue.py): the ids
must still arrive, in order, before what the process does next; a Redis restarted or down must not lose the
next commit's ids; a forked process must not write on its parent's connection."""
from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import redis

from ipoa.adapters.redis_conn import connect
from ipoa.adapters.rq_queue import OUTBOX_LIST, OutboxNotifier


def _eventually(check, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within 5 s"
        time.sleep(0.01)


def _listed(url: str) -> list[str]:
    return [i.decode() for i in connect(url).lrange(OUTBOX_LIST, 0, -1)]


def test_ids_arrive_in_the_order_published_without_waiting_for_answers(private_redis):
    notifier = OutboxNotifier(lambda: connect(private_redis.url))
    sent: list[str] = []
    for i in range(300):
        ids = [f"m{i}a", f"m{i}b"] if i % 3 == 0 else [f"m{i}"]
        notifier.publish(ids)
        sent += ids
    # Unanswered, they may land a moment after a read on another connection: what the relay's BLPOP waits for.
    assert connect(private_redis.url).blpop([OUTBOX_LIST], timeout=5) == (OUTBOX_LIST.encode(), b"m0a")
    _eventually(lambda: len(_listed(private_redis.url)) == len(sent) - 1)
    assert _listed(private_redis.url) == sent[1:]


def test_confirmed_ids_are_in_the_list_before_publish_returns(private_redis):
    notifier = OutboxNotifier(lambda: connect(private_redis.url), confirmed=True)
    reader = connect(private_redis.url)
    for i in range(100):
        notifier.publish([f"m{i}"])
        assert reader.llen(OUTBOX_LIST) == i + 1


def test_the_first_publish_after_redis_restarts_reaches_it(private_redis):
    notifier = OutboxNotifier(lambda: connect(private_redis.url))
    notifier.publish(["before"])
    _eventually(lambda: _listed(private_redis.url) == ["before"])
    private_redis.kill()
    private_redis.start()  # back, empty; the notifier's connection was closed by the old server
    notifier.publish(["after"])
    _eventually(lambda: _listed(private_redis.url) == ["after"])


def test_while_redis_is_down_publish_raises_and_the_next_one_after_connects_again(private_redis):
    notifier = OutboxNotifier(lambda: connect(private_redis.url))
    notifier.publish(["first"])
    private_redis.kill()
    with pytest.raises((redis.ConnectionError, OSError)):  # the unit of work logs it; the sweep hands it over
        for _ in range(3):  # a write may land in the socket's buffer once before the broken pipe shows
            notifier.publish(["lost"])
    private_redis.start()
    notifier.publish(["next"])
    _eventually(lambda: _listed(private_redis.url) == ["next"])


def _child(notifier: OutboxNotifier, n: int) -> None:
    for i in range(n):
        notifier.publish([f"child{i}"])
    os._exit(0)  # as an RQ work horse ends: no clean-up


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is how RQ runs jobs; this platform has none")
def test_a_forked_process_publishes_on_a_connection_of_its_own(private_redis):
    notifier = OutboxNotifier(lambda: connect(private_redis.url))
    notifier.publish(["parent0"])  # the parent's connection exists before the fork
    child = multiprocessing.get_context("fork").Process(target=_child, args=(notifier, 200))
    child.start()
    for i in range(1, 201):
        notifier.publish([f"parent{i}"])
    child.join(30)
    assert child.exitcode == 0
    _eventually(lambda: len(_listed(private_redis.url)) == 401)
    listed = _listed(private_redis.url)
    # Nothing lost or garbled by two processes writing on one socket, each process's ids in its own order.
    assert [i for i in listed if i.startswith("parent")] == [f"parent{i}" for i in range(201)]
    assert [i for i in listed if i.startswith("child")] == [f"child{i}" for i in range(200)]


def test_reconnecting_any_number_of_times_never_runs_out_of_connections(private_redis):
    # Each hang-up the notifier sees (Redis restarted, a connection broken) makes it a new connection; the
    # Redis client's pool would count each against its limit (100) and never hear it was closed. One
    # client, as the app's services give it (Services.redis).
    client = connect(private_redis.url)
    notifier = OutboxNotifier(lambda: client)
    reader = connect(private_redis.url)
    for i in range(150):
        notifier.publish([f"m{i}"])
        reader.client_kill_filter(_type="normal", skipme=True)  # the notifier's connection, closed by Redis
        _eventually(lambda i=i: reader.llen(OUTBOX_LIST) == i + 1)
    assert _listed(private_redis.url) == [f"m{i}" for i in range(150)]
