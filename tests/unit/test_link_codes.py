"""The secure-page link codes texts carry (ipoa/domain/sms/links.py): drawn from one read of the system's
randomness, each character uniform over the references' alphabet."""
from __future__ import annotations

import collections

from ipoa.domain.sms import links
from ipoa.domain.sms.links import LINK_CODE_ALPHABET, LINK_CODE_LENGTH, new_link_code, normalise_link_code


def test_a_code_is_ten_characters_of_the_alphabet_and_reads_back_as_itself():
    for _ in range(500):
        code = new_link_code()
        assert len(code) == LINK_CODE_LENGTH
        assert set(code) <= set(LINK_CODE_ALPHABET)
        assert normalise_link_code(code.lower()) == code


def test_bytes_that_would_bias_the_alphabet_are_never_used(monkeypatch):
    # 240..255 would map onto the alphabet's first 16 characters a second time: only bytes below 240 count,
    # and when a read leaves too few, another is taken.
    reads = iter([bytes([255, 250, 240, 0, 29, 30, 239] + [241] * 9), bytes(range(16))])
    monkeypatch.setattr(links.secrets, "token_bytes", lambda n: next(reads))
    a = LINK_CODE_ALPHABET
    assert new_link_code() == a[0] + a[29] + a[0] + a[239 % 30] + a[0] + a[1] + a[2] + a[3] + a[4] + a[5]


def test_every_character_is_drawn_about_equally_often():
    counts = collections.Counter(ch for _ in range(6000) for ch in new_link_code())
    assert set(counts) == set(LINK_CODE_ALPHABET)
    expected = 6000 * LINK_CODE_LENGTH / len(LINK_CODE_ALPHABET)  # 2,000 each; sd about 44
    assert all(abs(n - expected) < 300 for n in counts.values()), counts


def test_two_codes_differ():
    assert len({new_link_code() for _ in range(1000)}) == 1000
