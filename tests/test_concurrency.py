"""Parallel unlocks: guarded updates keep views and attempts within their limits, whatever the timing."""

import threading

from tests.helpers import SECRET_CONTENT, create_secret, csrf_token, load_secret

PARALLEL = 20


def race(app, unique_id: str, password: str) -> list:
    """Send PARALLEL unlock POSTs at the same moment, each from its own browser; return the responses."""
    clients = [app.test_client() for _ in range(PARALLEL)]
    tokens = [csrf_token(client, f"/view/{unique_id}") for client in clients]
    barrier = threading.Barrier(PARALLEL)
    responses = [None] * PARALLEL

    def worker(index: int) -> None:
        barrier.wait()
        response = clients[index].post(f"/view/{unique_id}", data={"csrf_token": tokens[index], "password": password})
        responses[index] = (response.status_code, response.get_data(as_text=True))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return responses


def test_twenty_parallel_unlocks_of_a_one_view_secret_reveal_once(app, logged_in_client):
    unique_id = create_secret(logged_in_client, max_views="1")
    responses = race(app, unique_id, "open-sesame-42")
    reveals = [body for status, body in responses if status == 200 and SECRET_CONTENT in body]
    assert len(reveals) == 1
    assert {status for status, _ in responses} <= {200, 410, 429}
    secret = load_secret(app, unique_id)
    assert (secret.view_count, secret.status) == (1, "used_up")
    assert secret.failed_attempts == 0  # right passwords that lost the race are no wrong tries


def test_twenty_parallel_wrong_guesses_never_pass_the_attempt_limit(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    responses = race(app, unique_id, "wrong-guess")
    assert all(SECRET_CONTENT not in body for _, body in responses)
    assert {status for status, _ in responses} <= {403, 410, 429}
    assert sum(status == 403 for status, _ in responses) <= 4
    secret = load_secret(app, unique_id)
    assert secret.failed_attempts == 5
    assert secret.status == "destroyed"

