"""QR codes: they decode to exactly the share link, live under random names, and only their owner gets them."""

import io
import secrets
from pathlib import Path

import pytest
import segno
import zxingcpp
from PIL import Image

from app import create_app
from tests.helpers import create_secret, load_secret, make_config


def decode(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1
    return results[0].text


def test_png_decodes_to_exactly_the_link(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    response = logged_in_client.get(f"/secrets/{unique_id}/qr.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert decode(response.data) == f"http://localhost/view/{unique_id}"
    file = app.config["QR_DIR"] / load_secret(app, unique_id).qr_filename
    assert decode(file.read_bytes()) == f"http://localhost/view/{unique_id}"


def test_qr_is_large_and_robust_enough_to_print(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    file = app.config["QR_DIR"] / load_secret(app, unique_id).qr_filename
    with Image.open(file) as image:
        decoded = zxingcpp.read_barcodes(image)[0]
        modules = segno.make(decoded.text, error=decoded.ec_level, boost_error=False).symbol_size(scale=1, border=4)[0]
        assert decoded.ec_level in {"M", "Q", "H"}
        assert image.size[0] == modules * 8  # scale 8, border 4


def test_file_name_is_random_and_never_the_share_id(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    name = load_secret(app, unique_id).qr_filename
    assert unique_id not in name
    assert len(name.removesuffix(".png")) >= 43


def test_public_base_url_goes_into_links_and_codes(app, logged_in_client):
    app.config["PUBLIC_BASE_URL"] = "https://secrets.example.org"
    unique_id = create_secret(logged_in_client)
    page = logged_in_client.get(f"/secrets/{unique_id}").text
    assert f"https://secrets.example.org/view/{unique_id}" in page
    assert decode(logged_in_client.get(f"/secrets/{unique_id}/qr.png").data) == f"https://secrets.example.org/view/{unique_id}"


def test_missing_file_is_regenerated(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    file = app.config["QR_DIR"] / load_secret(app, unique_id).qr_filename
    file.unlink()
    response = logged_in_client.get(f"/secrets/{unique_id}/qr.png")
    assert decode(response.data) == f"http://localhost/view/{unique_id}"
    assert file.exists()


def test_another_host_without_the_file_draws_it_from_the_database(app, logged_in_client, tmp_path, clock):
    """Several app hosts share the database and keys, not static/qrcodes: a host that never wrote the file writes it."""
    unique_id = create_secret(logged_in_client)
    other_host = create_app(
        make_config(
            tmp_path / "other-host",
            clock,
            SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
            SECRET_KEY=app.config["SECRET_KEY"],
            ENCRYPTION_KEYS=app.config["ENCRYPTION_KEYS"],
        )
    )
    same_browser = other_host.test_client()
    same_browser.set_cookie("session", logged_in_client.get_cookie("session").value)
    filename = load_secret(app, unique_id).qr_filename
    assert not (other_host.config["QR_DIR"] / filename).exists()

    assert f"/view/{unique_id}" in same_browser.get(f"/secrets/{unique_id}").text
    response = same_browser.get(f"/secrets/{unique_id}/qr.png")
    assert response.status_code == 200
    assert decode(response.data) == f"http://localhost/view/{unique_id}"
    assert (other_host.config["QR_DIR"] / filename).exists()


def test_svg_download(logged_in_client):
    unique_id = create_secret(logged_in_client)
    response = logged_in_client.get(f"/secrets/{unique_id}/qr.svg?download=1")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.data.startswith(b"<svg")


def test_qr_folder_is_not_served_publicly(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    name = load_secret(app, unique_id).qr_filename
    assert app.test_client().get(f"/static/qrcodes/{name}").status_code == 404
    assert logged_in_client.get(f"/static/qrcodes/{name}").status_code == 404


def test_password_never_goes_into_the_link_or_code(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    text = decode(logged_in_client.get(f"/secrets/{unique_id}/qr.png").data)
    assert "open-sesame" not in text and "?" not in text and "#" not in text


@pytest.mark.parametrize(
    "path",
    [
        "/static/qrcodes/{name}",
        "/static/./qrcodes/{name}",
        "/static/x/../qrcodes/{name}",
        "/static/%2e/qrcodes/{name}",
        "/static/%71rcodes/{name}",
        "/static/css/..%2fqrcodes/{name}",
    ],
)
def test_qr_folder_is_not_served_whatever_the_spelling(app, logged_in_client, path):
    folder = Path(app.static_folder) / "qrcodes"
    folder.mkdir(exist_ok=True)
    probe = folder / f"probe-{secrets.token_hex(8)}.png"
    probe.write_bytes(b"\x89PNG a QR image")
    try:
        assert logged_in_client.get(path.format(name=probe.name)).status_code == 404
        assert app.test_client().get(path.format(name=probe.name)).status_code == 404
    finally:
        probe.unlink()
