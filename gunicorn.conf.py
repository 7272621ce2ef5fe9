"""Read by gunicorn from its working directory (the Procfile's `web` and `make run` start it in the
repository's root). Settings stay on the command line; this removes gunicorn's own `Server: gunicorn`
header, so answers carry no server product or version (ipoa/web/headers.py), and keeps what a worker's
start-up made out of the garbage collector's way."""
import gc

from ipoa.web.headers import quiet_gunicorn

quiet_gunicorn()


def post_worker_init(worker) -> None:
    """The app is loaded (gunicorn calls this after the worker's load_wsgi): what start-up made (modules, the
    ORM's mappers, the services, compiled templates: about 150,000 objects) lives as long as the worker, so
    it leaves the collector's full collections, which otherwise walk it all (about 90 ms each on this
    machine, paid by whichever request is running then). The relay and the RQ worker do the same
    (workers/relay.py, workers/worker.py; docs/performance.md, "Engine core")."""
    gc.collect()
    gc.freeze()
