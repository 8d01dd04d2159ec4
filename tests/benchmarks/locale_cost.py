"""What choosing the language costs the recipient's page: `GET /view/<id>` in process, with no Accept-Language and
with a German phone's, in alternating batches so drift hits both alike (issue 20; `make bench` has the full loads).

`python -m tests.benchmarks.locale_cost` prints the medians and their ratio.
"""

import statistics
import time
import timeit

from werkzeug.test import EnvironBuilder

from tests.benchmarks.profile_view import _call, seeded_secureshare
from tests.benchmarks.secureshare import GERMAN_PHONE

SELECTOR_CALLS = 10_000
BATCHES = 20
PER_BATCH = 100


def _batch_ms(app, environs: list[dict]) -> float:
    """Return the mean time of one request over a batch, in milliseconds."""
    started = time.perf_counter()
    for environ in environs:
        _call(app, environ)
    return (time.perf_counter() - started) * 1000 / len(environs)


def measure(target) -> dict[str, float]:
    """Return the median per-request milliseconds of the page in English and in German, and German / English."""
    path = f"/view/{target.accounts.share_id}"
    headers = {"English": {}, "German": {"Accept-Language": GERMAN_PHONE}}

    def environs(name: str) -> list[dict]:
        builder = EnvironBuilder(path=path, base_url="http://127.0.0.1", headers=headers[name])
        return [builder.get_environ() for _ in range(PER_BATCH)]

    for name in headers:
        _batch_ms(target.app, environs(name))  # warm: templates compiled, catalogues loaded, connections pooled
    times = {name: [] for name in headers}
    for batch in range(BATCHES):
        for name in sorted(headers, reverse=batch % 2 == 1):  # each goes first half the time
            times[name].append(_batch_ms(target.app, environs(name)))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {**medians, "ratio": medians["German"] / medians["English"], "selector": _selector_us(target.app, path)}


def _selector_us(app, path: str) -> float:
    """Return what choosing the language alone takes, in microseconds (i18n.select_language, German header)."""
    import i18n

    with app.test_request_context(path, headers={"Accept-Language": GERMAN_PHONE}):
        return timeit.timeit(i18n.select_language, number=SELECTOR_CALLS) * 1e6 / SELECTOR_CALLS


def main() -> None:
    figures = measure(seeded_secureshare("secureshare-locale-"))
    print(f"GET /view/<id>, {BATCHES} x {PER_BATCH} requests each, in process, medians of batch means:")
    print(f"  English (no Accept-Language): {figures['English']:.3f} ms")
    print(f"  German ({GERMAN_PHONE}): {figures['German']:.3f} ms")
    print(f"  German / English: {figures['ratio']:.3f}")
    print(f"  choosing the language alone: {figures['selector']:.1f} µs a request")


if __name__ == "__main__":
    main()
