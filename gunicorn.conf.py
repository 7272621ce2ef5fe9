"""Read by gunicorn from its working directory (the Procfile's `web` and `make run` start it in the
repository's root). Settings stay on the command line; this only removes gunicorn's own `Server: gunicorn`
header, so answers carry no server product or version (ipoa/web/headers.py)."""
from ipoa.web.headers import quiet_gunicorn

quiet_gunicorn()
