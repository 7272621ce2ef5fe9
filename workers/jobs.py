"""RQ jobs. They take ids, never ORM objects, and run inside the worker's app."""
from __future__ import annotations

from flask import current_app
from rq import Queue, get_current_job

from ipoa.adapters.queue import enqueue_sms
from ipoa.service import outbox, sms


def _svc():
    return current_app.extensions["ipoa"]


def process_outbox_message(message_id: str) -> bool:
    job = get_current_job()
    queue = Queue(job.origin, connection=job.connection)
    return outbox.process(_svc(), message_id, send_queue=lambda ids: enqueue_sms(queue, ids))


def send_sms(sms_id: str) -> str:
    return sms.send(_svc(), sms_id)
