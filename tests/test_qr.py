"""QR codes: they decode to exactly the share link, only their owner gets them, and none is ever written to disk."""

import io
import os

import segno
import zxingcpp
from PIL import Image

from app import create_app
from tests.helpers import create_secret, make_config, post_form, unlock


def decode(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1
    return results[0].text


def files_under(*folders) -> set[str]:
    return {os.path.join(root, name) for folder in folders for root, _dirs, names in os.walk(folder) for name in names}


def test_png_decodes_to_exactly_the_link(logged_in_client):
    unique_id = create_secret(logged_in_client)
    response = logged_in_client.get(f"/secrets/{unique_id}/qr.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert decode(response.data) == f"http://localhost/view/{unique_id}"


def test_qr_is_large_and_robust_enough_to_print(logged_in_client):
    unique_id = create_secret(logged_in_client)
    with Image.open(io.BytesIO(logged_in_client.get(f"/secrets/{unique_id}/qr.png").data)) as image:
        decoded = zxingcpp.read_barcodes(image)[0]
        modules = segno.make(decoded.text, error=decoded.ec_level, boost_error=False).symbol_size(scale=1, border=4)[0]
        assert decoded.ec_level in {"M", "Q", "H"}
        assert image.size[0] == modules * 8  # scale 8, border 4


def test_no_qr_image_is_ever_written_to_disk(app, logged_in_client, recipient, tmp_path):
    """Fault: a qr.png request racing the delete wrote the file again after the delete removed it. Images are drawn
    in memory per request now, so there is no file to outlive its secret."""
    before = files_under(tmp_path, app.static_folder, app.instance_path)
    unique_id = create_secret(logged_in_client, max_views="1")
    for path in ("qr.png", "qr.svg", "qr.png?download=1", "card"):
        assert logged_in_client.get(f"/secrets/{unique_id}/{path}").status_code == 200
    unlock(recipient, unique_id)
    assert logged_in_client.get(f"/secrets/{unique_id}/qr.png").status_code == 410
    written = files_under(tmp_path, app.static_folder, app.instance_path) - before
    assert {os.path.basename(path) for path in written} <= {"secureshare.db", "secureshare.db-wal", "secureshare.db-shm"}


def test_init_db_removes_the_qr_images_earlier_versions_kept(app, tmp_path, clock):
    old_folder = tmp_path / "static" / "qrcodes"
    old_folder.mkdir(parents=True)
    (old_folder / "aGVsbG8.png").write_bytes(b"\x89PNG the QR image of a live link")
    upgraded = create_app(make_config(tmp_path, clock, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'up.db'}"))
    upgraded.static_folder = str(tmp_path / "static")
    output = upgraded.test_cli_runner().invoke(args=["init-db"]).output
    assert "Removed the QR images earlier versions kept in static/qrcodes" in output
    assert not old_folder.exists()


def test_public_base_url_goes_into_links_and_codes(app, logged_in_client):
    app.config["PUBLIC_BASE_URL"] = "https://secrets.example.org"
    unique_id = create_secret(logged_in_client)
    page = logged_in_client.get(f"/secrets/{unique_id}").text
    assert f"https://secrets.example.org/view/{unique_id}" in page
    assert decode(logged_in_client.get(f"/secrets/{unique_id}/qr.png").data) == f"https://secrets.example.org/view/{unique_id}"


def test_another_host_draws_the_same_code_from_the_database(app, logged_in_client, tmp_path, clock):
    """Several app hosts share the database and keys, nothing else: any of them draws the code."""
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
    assert f"/view/{unique_id}" in same_browser.get(f"/secrets/{unique_id}").text
    response = same_browser.get(f"/secrets/{unique_id}/qr.png")
    assert response.status_code == 200
    assert decode(response.data) == f"http://localhost/view/{unique_id}"


def test_svg_download(logged_in_client):
    unique_id = create_secret(logged_in_client)
    response = logged_in_client.get(f"/secrets/{unique_id}/qr.svg?download=1")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.data.startswith(b"<svg")


def test_only_the_owner_gets_the_code(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    assert app.test_client().get(f"/secrets/{unique_id}/qr.png").status_code == 302  # to sign in
    stranger = app.test_client()
    post_form(stranger, "/register", {"username": "mallory", "email": "m@example.org", "password": "violet-harbor-trumpet-42",
                                      "confirm": "violet-harbor-trumpet-42"})  # fmt: skip
    assert stranger.get(f"/secrets/{unique_id}/qr.png").status_code == 404


def test_password_never_goes_into_the_link_or_code(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    text = decode(logged_in_client.get(f"/secrets/{unique_id}/qr.png").data)
    assert "open-sesame" not in text and "?" not in text and "#" not in text
