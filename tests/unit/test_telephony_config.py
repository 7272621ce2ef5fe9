"""A centre's phone line in workflows/directory.yaml (domain/telephony/centre_voice.py) and sla.yaml's
abandoned_call: checked when loaded, naming the centre and the key (docs/telephony.md)."""
from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from ipoa.domain.directory import DirectoryError, load_directory
from ipoa.domain.sla import SlaPolicyError, load_sla_policy
from ipoa.domain.telephony.centre_voice import GREETING_MAX, Overflow

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "workflows" / "directory.yaml").read_text(encoding="utf-8"))
SLA = yaml.safe_load((ROOT / "workflows" / "sla.yaml").read_text(encoding="utf-8"))
SOURCE = "workflows/directory.yaml"


def centre(data: dict, code: str) -> dict:
    return next(c for c in data["centres"] if c["code"] == code)


def loaded_with(code: str, **voice) -> dict:
    data = copy.deepcopy(RAW)
    centre(data, code)["voice"] = voice
    return data


def test_every_shipped_centre_has_a_line_and_out_of_hours_goes_where_the_domain_says():
    directory = load_directory(RAW, source=SOURCE)
    lines = {code: c.voice for code, c in directory.centres.items()}
    assert all(lines.values())
    # Social care's calls go to the Emergency Duty Team out of hours, health's to the hub (docs/domain.md).
    assert lines["ASC"].out_of_hours.transfer_to == "EDT"
    assert lines["HFD"].out_of_hours.transfer_to == "CNH"
    assert lines["FCP"].out_of_hours.transfer_to is None  # told when it opens, and 999 and 111
    assert lines["CNH"].overflow == Overflow("CHS", "queue", 180, False)
    assert directory.centre_for_number("+441632960101").code == "CNH"
    assert directory.centre_for_number("+441632960999") is None


@pytest.mark.parametrize(("voice", "problem"), [
    ({"greeting": ""}, "greeting"),
    ({"greeting": "x" * (GREETING_MAX + 1)}, "greeting"),
    ({"greeting": "Hello\x00"}, "greeting"),
    ({"greeting": "Hello", "menu": "yes"}, "menu"),
    ({"greeting": "Hello", "music": True}, "unknown key"),
    ({"greeting": "Hello", "out_of_hours": {"transfer_to": "NOPE"}}, "unknown centre 'NOPE'"),
    ({"greeting": "Hello", "out_of_hours": {"transfer_to": "FCP"}}, "itself"),
    ({"greeting": "Hello", "overflow": {"to": "CNH"}}, "longest_wait_seconds, when_nobody_available"),
    ({"greeting": "Hello", "overflow": {"to": "CNH", "longest_wait_seconds": 0}}, "longest_wait_seconds"),
    ({"greeting": "Hello", "overflow": {"to": "CNH", "via": "carrier pigeon", "longest_wait_seconds": 60}}, "via"),
])
def test_a_bad_line_is_refused_naming_the_centre_and_the_key(voice, problem):
    with pytest.raises(DirectoryError) as exc:
        load_directory(loaded_with("FCP", **voice), source=SOURCE)
    assert SOURCE in str(exc.value) and problem in str(exc.value)
    assert "FCP" in str(exc.value)


def test_an_overflow_into_a_queue_needs_a_centre_whose_line_ipoa_answers():
    data = loaded_with("FCP", greeting="Hello", overflow={"to": "MHA", "longest_wait_seconds": 60})
    del centre(data, "MHA")["voice"]
    with pytest.raises(DirectoryError, match="MHA has no voice block"):
        load_directory(data, source=SOURCE)
    centre(data, "FCP")["voice"]["overflow"]["via"] = "dial"  # its number will do
    assert load_directory(data, source=SOURCE).centres["FCP"].voice.overflow.via == "dial"


def test_a_line_needs_the_centres_number():
    data = copy.deepcopy(RAW)
    del centre(data, "MHA")["phone"]
    with pytest.raises(DirectoryError, match="centre MHA: voice needs the centre's phone"):
        load_directory(data, source=SOURCE)


def test_abandoned_calls_default_to_5_seconds_and_20_minutes_and_are_checked():
    directory = load_directory(RAW, source=SOURCE)
    policy = load_sla_policy(SLA, directory, source="sla.yaml")
    assert (policy.abandoned.after, policy.abandoned.call_back_within) == (timedelta(seconds=5),
                                                                            timedelta(minutes=20))
    without = {k: v for k, v in SLA.items() if k != "abandoned_call"}
    assert load_sla_policy(without, directory).abandoned.after == timedelta(seconds=5)
    changed = SLA | {"abandoned_call": {"after_seconds": 10, "call_back_within": "30m"}}
    assert load_sla_policy(changed, directory).abandoned.call_back_within == timedelta(minutes=30)
    for bad, where in (({"after_seconds": -1}, "after_seconds"), ({"call_back_within": "soon"}, "call_back_within"),
                       ({"after_seconds": 5, "typo": 1}, "typo")):
        with pytest.raises(SlaPolicyError, match=where):
            load_sla_policy(SLA | {"abandoned_call": bad}, directory, source="sla.yaml")
