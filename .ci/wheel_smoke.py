"""Run by .ci/wheel-smoke with the python of a virtualenv that holds only the built wheel and its
dependencies, from a working directory outside the checkout (given as the one argument), after
`flask --app ipoa init` and `seed-demo`: the product works from what the wheel carries. Exits non-zero
at the first failure."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import ipoa
import workers.relay  # noqa: F401 - the Procfile's processes, importable from the wheel (not started)
import workers.scheduler  # noqa: F401
import workers.worker  # noqa: F401
from ipoa import create_app, paths
from ipoa.demo import DEMO_PASSWORD
from ipoa.domain import passwords

checkout = Path(sys.argv[1]).resolve()
package = Path(ipoa.__file__).resolve().parent
assert checkout not in package.parents, f"ipoa imported from the checkout ({package}), not the wheel"
for name in ("TEMPLATES", "SMS_TEMPLATES", "WORKFLOWS", "DEMO_SLA_POLICY", "STATIC", "MIGRATIONS", "DATA"):
    where = getattr(paths, name)
    assert package in where.parents, f"paths.{name} is {where}, outside the installed package {package}"
    assert where.exists(), f"paths.{name}: {where} is not in the wheel"
assert (paths.MIGRATIONS / "script.py.mako").is_file(), "Alembic's script template is not in the wheel"
assert "password123" in passwords.common_passwords(), "the common-passwords list (ipoa/data) did not load"

app = create_app({"SESSION_COOKIE_SECURE": False})
svc = app.extensions["ipoa"]
try:
    assert svc.workflows_dir == paths.WORKFLOWS, svc.workflows_dir
    assert {"call", "referral"} <= {wf.name for wf in svc.catalogue.workflows}, "default workflows not loaded"
    client = app.test_client()
    for url in ("/healthz", "/readyz", "/static/app.css", "/login"):
        resp = client.get(url)
        assert resp.status_code == 200, f"GET {url}: {resp.status_code} {resp.get_data(as_text=True)[:500]}"
    login = client.get("/login").get_data(as_text=True)
    assert "<form" in login and "/static/" in login, "the sign-in page did not render from its template"

    # Signed in as the demo handler (seed-demo): the queue, and a call's page with the actions its deployed
    # workflow allows.
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login).group(1)
    resp = client.post("/login", data={"username": "handler", "password": DEMO_PASSWORD, "csrf_token": token})
    assert resp.status_code in (302, 303), f"sign-in as the demo handler: {resp.status_code}"
    queue = client.get("/queue")
    assert queue.status_code == 200, f"GET /queue signed in: {queue.status_code}"
    refs = re.findall(r'href="(/calls/[0-9A-Z]{4}-[0-9A-Z]{4})"', queue.get_data(as_text=True))
    assert refs, "the demo's calls are not in the handler's queue"
    call = client.get(refs[0])
    assert call.status_code == 200 and "<form" in call.get_data(as_text=True), f"GET {refs[0]}: {call.status_code}"
finally:
    svc.close()
    try:  # the embedded Redis would outlive this process (and its folder, which .ci/wheel-smoke removes)
        svc.redis().shutdown(nosave=True)
    except Exception:  # noqa: BLE001 - it closes the connection as it stops
        pass
print(f"wheel smoke: ok (ipoa from {package})")
