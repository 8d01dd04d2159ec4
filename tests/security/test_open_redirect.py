"""Open redirects: `next` after sign-in only ever leads to a path on this site."""

import pytest


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "http:/evil.example", "javascript:alert(1)"],
)
def test_next_never_leaves_the_site(auth, target):
    auth.register()
    auth.logout()
    response = auth.login(next_=target)
    assert response.headers["Location"] == "/dashboard"


def test_next_to_a_local_path_is_followed(auth):
    auth.register()
    auth.logout()
    assert auth.login(next_="/account").headers["Location"] == "/account"
