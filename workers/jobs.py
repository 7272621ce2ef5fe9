"""RQ jobs. They take ids, never ORM objects, and run inside the worker's app."""
from __future__ import annotations

from flask import current_app

from ipoa.service import outbox


def process_outbox_message(message_id: str) -> bool:
    return outbox.process(current_app.extensions["ipoa"], message_id)
