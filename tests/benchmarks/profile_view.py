"""Profile of the recipient's page, `GET /view/<id>`, in process with pyinstrument: where one request's time goes.

`python -m tests.benchmarks.profile_view` prints it alone (no load, no 100,000 rows): the before/after check.
"""

import tempfile
from pathlib import Path

from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer
from werkzeug.test import EnvironBuilder

REQUESTS = 500
TOP_LINES = 40


def _call(app, environ: dict) -> None:
    body = app.wsgi_app(environ, lambda status, headers, exc_info=None: None)
    for _ in body:
        pass
    getattr(body, "close", lambda: None)()


def profile_view(target) -> str:
    """Return the top lines of the call tree of REQUESTS page views (WSGI app only: no server, no test client)."""
    path = f"/view/{target.accounts.share_id}"
    environs = [EnvironBuilder(path=path, base_url="http://127.0.0.1").get_environ() for _ in range(REQUESTS + 20)]
    for environ in environs[:20]:
        _call(target.app, environ)  # warm caches: templates compiled, connections pooled
    profiler = Profiler(interval=0.0005)
    with profiler:
        for environ in environs[20:]:
            _call(target.app, environ)
    tree = profiler.output(ConsoleRenderer(unicode=False, color=False, time="percent_of_total", flat=True, flat_time="total"))
    lines = tree.strip().splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("Profile at")) + 2  # past the banner
    return "\n".join(line.rstrip() for line in lines[start : start + TOP_LINES])


def seeded_secureshare(prefix: str):
    """Return SecureShare on a new SQLite file in a temporary folder, with the bench's accounts and secret, for
    in-process calls (its server is stopped once they are made)."""
    from tests.benchmarks.secureshare import SecureShare

    run_dir = Path(tempfile.mkdtemp(prefix=prefix))
    target = SecureShare("SecureShare (SQLite)", run_dir, f"sqlite:///{run_dir / 'secureshare.db'}")
    target.start()
    try:
        target.make_accounts()
    finally:
        target.stop()
    return target


def main() -> None:
    print(profile_view(seeded_secureshare("secureshare-profile-")))


if __name__ == "__main__":
    main()
