"""Plain helpers the test modules share (fixtures are in tests/conftest.py). A test module imports helpers
from here, tests/helpers/<area>.py or tests/conftest.py, never from another test module
(tests/unit/test_test_layout.py): each helper has one home, and importing a test module runs none of its
tests twice. tests/conftest.py re-exports the ones below, which test modules have long imported from there."""
from __future__ import annotations

import re
from datetime import UTC, datetime

from werkzeug.security import generate_password_hash

from ipoa.users import ApiToken, User, hash_token, new_token

# A Monday in GMT, inside every weekday service's hours.
DEFAULT_NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
PASSWORD_HASH = generate_password_hash(PASSWORD)  # once: each scrypt hash costs ~0.25 s


def make_user(svc, username: str, role: str, centre: str | None) -> User:
    with svc.uow() as uow:
        user = User(username=username, display_name=username.title(), role=role, centre=centre,
                    password_hash=PASSWORD_HASH, created_at=svc.clock.now())
        uow.session.add(user)
        uow.commit()
    return user


def make_token(svc, user: User) -> str:
    token = new_token()
    with svc.uow() as uow:
        uow.session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=svc.clock.now()))
        uow.commit()
    return token


def csrf_token(client, url: str = "/login") -> str:
    html = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def call_payload(**overrides) -> dict:
    """A valid intake body; the person is invented, the NHS number from the never-issued 999 range."""
    body = {
        "centre": "CNH",
        "caller": {"type": "carer", "name": "Jo Carer", "phone": "07911 123456"},
        "subject": {"nhs_number": "9990000026", "given_name": "Edith", "family_name": "Testperson",
                    "date_of_birth": "1938-04-02", "postcode": "LE11 3AB"},
        "need": "urgent_community_health",
        "urgency": "urgent",
        "summary": "Fell, no injury, cannot get up unaided.",
        "consent": "given",
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body
