"""A rota change's gap warning on the real database (service/rota_warnings.with_gap_warning): the gaps of
the next week before and after the change, the new ones in words; none when the change opens none; a change
that is refused warns of nothing and stores nothing. Monday 23 November 2026, 10:00 GMT (UK time is UTC);
DN is open 24/7 (workflows/directory.yaml)."""
from __future__ import annotations

from datetime import date, time

import pytest

from ipoa.service import rota_warnings, rotas
from ipoa.service.professionals import add_professional
from tests.helpers.rota import on_duty


@pytest.fixture
def team(svc):
    ann = add_professional(svc, name="Ann Day", service="DN", mobile="07700 900201")
    bob = add_professional(svc, name="Bob Night", service="DN", mobile="07700 900202")
    return {"ann": ann, "bob": bob, "shifts": on_duty(svc, "DN", ann, duty_lead=ann)}


def test_a_change_that_opens_a_gap_returns_it_in_words(svc, team):
    change_id, found = rota_warnings.with_gap_warning(svc, "DN", lambda: rotas.leave(
        svc, "sup", team["ann"], date(2026, 11, 28), date(2026, 11, 28)))
    assert isinstance(change_id, int)
    assert [(g.service, g.words) for g in found] == [("DN", "Sat 28 Nov 00:00 to Sun 29 Nov 00:00, 24 hours")]


def test_a_change_that_opens_no_gap_returns_none(svc, team):
    _, found = rota_warnings.with_gap_warning(svc, "DN", lambda: rotas.add_one_off_shift(
        svc, "sup", service="DN", day=date(2026, 11, 28), start=time(8), end=time(20), members=[team["bob"]]))
    assert found == []
    # A gap that was already there (CRT has no rota) is not the change's doing.
    _, found = rota_warnings.with_gap_warning(svc, ["DN", "CRT"], lambda: rotas.cover(
        svc, "sup", team["shifts"][5], date(2026, 11, 28), professionals=[team["bob"]]))
    assert found == []


def test_only_the_next_week_counts_and_every_service_can_be_measured(svc, team):
    # Leave three weeks ahead opens a gap beyond the week: no warning.
    _, found = rota_warnings.with_gap_warning(svc, None, lambda: rotas.leave(
        svc, "sup", team["ann"], date(2026, 12, 14), date(2026, 12, 14)))
    assert found == []
    _, found = rota_warnings.with_gap_warning(svc, None, lambda: rotas.deactivate_pattern_shift(
        svc, "sup", team["shifts"][0]))  # Mondays: today's, running now, and the next one's first 10 hours
    assert [g.words for g in found] == ["Mon 23 Nov 10:00 to Tue 24 Nov 00:00, 14 hours",
                                        "Mon 30 Nov 00:00 to Mon 30 Nov 10:00, 10 hours"]  # the week ends at 10:00


def test_a_refused_change_raises_and_warns_of_nothing(svc, team):
    with pytest.raises(rotas.InvalidRota):
        rota_warnings.with_gap_warning(svc, "DN", lambda: rotas.cover(
            svc, "sup", team["shifts"][0], date(2026, 11, 24), professionals=[]))  # a Tuesday: not run
    assert rota_warnings.measure(svc, ["DN"], svc.clock.now())["DN"] == ()


def test_the_week_view_marks_changes_and_lists_gaps(svc, team):
    rotas.cover(svc, "sup", team["shifts"][2], date(2026, 11, 25), professionals=[team["bob"]])
    week = rota_warnings.week(svc, "DN", date(2026, 11, 23))
    wednesday = dict(week.days)[date(2026, 11, 25)]
    assert [(s.start, s.end, [p.name for p in s.professionals], s.changed_by) for s in wednesday] == [
        ("00:00", "00:00", ["Bob Night"], ("cover",))]
    assert [p.weekday for p in week.patterns] == list(range(7)) and week.gaps == ()
    assert [p.name for p in rota_warnings.active_professionals(svc, "DN")] == ["Ann Day", "Bob Night"]
    with pytest.raises(rota_warnings.NotFound):
        rota_warnings.pattern(svc, "CRT", team["shifts"][0])
