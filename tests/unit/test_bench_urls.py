"""The benchmarks' guard on where they may point (bench/common.py): only at this machine, by loopback TCP or by
a Unix-domain socket directory (?host=/dir), and psycopg's own URLs keep the socket."""
from __future__ import annotations

import pytest

from bench.common import BenchError, Sandbox, local_only, plain_url

SOCKET = "postgresql://postgres@/ipoa_voice_bench?host=/var/run/postgresql"


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:5432/x", "postgresql://postgres@localhost/x",
                                 "redis://[::1]:6379/9", SOCKET])
def test_this_machine_is_allowed(url):
    local_only(url, "--database-url")


@pytest.mark.parametrize("url", ["postgresql://postgres@db.example:5432/x", "postgresql://postgres@/x",
                                 "postgresql://postgres@/x?host=db.example",
                                 "postgresql://postgres@/x?host=/tmp&host=db.example"])
def test_anywhere_else_is_refused(url):
    with pytest.raises(BenchError, match="must point at this machine"):
        local_only(url, "--database-url")


def test_psycopg_urls_keep_the_socket_directory_and_drop_the_driver():
    assert plain_url(SOCKET) == SOCKET
    assert plain_url("postgresql+psycopg://postgres@127.0.0.1:5432/x?application_name=y") == \
        "postgresql://postgres@127.0.0.1:5432/x"
    admin, name = Sandbox("ipoa_voice_bench", [], 9, []).admin_url(SOCKET)
    assert (admin, name) == ("postgresql://postgres@/postgres?host=/var/run/postgresql", "ipoa_voice_bench")
