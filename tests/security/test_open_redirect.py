"""Open redirects: `next` after sign-in only ever leads to a path on this site."""

from urllib.parse import quote

import pytest

from tests.helpers import csrf_token


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/\r\nX-Injected: 1",  # was a 500: a line break cannot go into a Location header
        "/\t/evil.example",
        "/\x7f",
    ],
)
def test_next_never_leaves_the_site(auth, target):
    auth.register()
    auth.logout()
    response = auth.login(next_=quote(target, safe="/"))
    assert response.headers["Location"] == "/dashboard"


def test_next_to_a_local_path_is_followed(auth):
    auth.register()
    auth.logout()
    assert auth.login(next_="/account").headers["Location"] == "/account"


def test_the_language_menu_goes_back_only_to_a_path_on_this_site(auth, client):
    auth.register()
    token = csrf_token(client, "/account")
    for target in ("//evil.example/", "/\r\nX-Injected: 1"):
        response = client.post("/account/language", data={"csrf_token": token, "lang": "en", "next": target})
        assert response.status_code == 303 and response.headers["Location"] == "/dashboard"
