"""Attached files through the app: the owner's upload, streamed and sealed; the recipient's list and downloads."""

import io
import os
import re
import tempfile
from pathlib import Path

import pytest
import werkzeug.wrappers.request
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from extensions import db
from schema import FileChunk, Secret, SecretFile
from tests.helpers import SECRET_PASSWORD, csrf_token, load_secret, post_form, secret_form, unlock

FILE_LINK_RE = re.compile(r'href="(/view/[^"]+/files/[^"]+)"')


@pytest.fixture
def config_overrides():
    return {"FILE_MAX_BYTES": 700_000, "FILE_MAX_COUNT": 3}


def post_files(client, files: list[tuple[str, bytes]], pause=lambda: None, **fields):
    """Post the create form as a browser does, multipart, with `files` in its file input (`pause` after the page)."""
    fields = MultiDict({"csrf_token": csrf_token(client, "/create"), **secret_form(**fields)})
    pause()
    for name, content in files:
        fields.add("files", FileStorage(io.BytesIO(content), name, content_type="text/plain"))
    boundary, body = encode_multipart(fields)  # in memory: the test client would spool a large body to a file itself
    return client.post("/create", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def share_id_of(response) -> str:
    assert response.status_code == 302, response.text
    return response.headers["Location"].rsplit("/", 1)[1]


def rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def download_links(page: str) -> list[str]:
    return [link.replace("&amp;", "&") for link in FILE_LINK_RE.findall(page)]


def test_a_file_goes_up_sealed_and_comes_down_whole(app, logged_in_client, recipient):
    data = os.urandom(150_000)
    share_id = share_id_of(post_files(logged_in_client, [("../keys/id_ed25519", data)], content=""))
    secret = load_secret(app, share_id)
    assert (secret.file_count, secret.file_bytes) == (1, len(data))
    page = unlock(recipient, share_id)
    assert page.status_code == 200 and "id_ed25519" in page.text and "../" not in page.text
    assert "data-reveal " not in page.text and "data-copy-target" not in page.text  # no empty text box to reveal
    [link] = download_links(page.text)
    download = recipient.get(link)
    assert download.status_code == 200 and download.data == data
    assert download.headers["Content-Disposition"].startswith('attachment; filename="id_ed25519"')
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]
    assert load_secret(app, share_id).view_count == 1  # the download spent no view


def test_an_html_file_is_never_served_to_render(logged_in_client, recipient):
    share_id = share_id_of(post_files(logged_in_client, [("page.svg", b"<svg onload=alert(1)>")]))
    [link] = download_links(unlock(recipient, share_id).text)
    download = recipient.get(link)
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment;")


def test_no_plaintext_reaches_the_disk_during_an_upload(app, logged_in_client, tmp_path, monkeypatch):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    # Werkzeug's own factory spools to a file it unlinks at once: had it run, a named one would hold the marker.
    monkeypatch.setattr(
        werkzeug.wrappers.request,
        "default_stream_factory",
        lambda **_: tempfile.NamedTemporaryFile(dir=private_tmp, delete=False),  # noqa: SIM115
    )
    marker = b"CANARY-upload-" + os.urandom(6).hex().encode()
    share_id_of(post_files(logged_in_client, [("plain.txt", marker * 20_000)]))  # 560 KB: Werkzeug would spool it
    database = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    searched = [path for path in tmp_path.rglob("*") if path.is_file()]  # the instance folder, the database, its WAL
    assert database in searched
    for path in searched:
        assert marker not in path.read_bytes(), path


def test_the_download_link_is_bound_to_its_secret_and_expires(app, logged_in_client, recipient, clock):
    first = share_id_of(post_files(logged_in_client, [("a.txt", b"first")]))
    second = share_id_of(post_files(logged_in_client, [("b.txt", b"second")]))
    [link] = download_links(unlock(recipient, first).text)
    assert recipient.get(link.replace(first, second)).status_code == 404
    assert recipient.get(link.replace("/files/k", "/files/x")).status_code == 404
    clock.advance(minutes=app.config["FILE_LINK_MINUTES"])
    assert recipient.get(link).status_code == 404


def test_a_disabled_owners_files_are_not_downloaded_with_a_link_given_before(app, logged_in_client, recipient):
    share_id = share_id_of(post_files(logged_in_client, [("a.txt", b"kept back")]))
    [link] = download_links(unlock(recipient, share_id).text)
    assert app.test_cli_runner().invoke(args=["users", "disable", "alice"]).exit_code == 0
    assert recipient.get(link).status_code == 410
    assert app.test_cli_runner().invoke(args=["users", "enable", "alice"]).exit_code == 0
    assert recipient.get(link).data == b"kept back"


def test_the_last_view_warns_and_its_files_stay_for_the_links_window(app, logged_in_client, recipient, clock):
    share_id = share_id_of(post_files(logged_in_client, [("a.txt", b"only once")], max_views="1"))
    page = unlock(recipient, share_id)
    assert "This was the last view" in page.text and "Download the files now" in page.text
    owners_page = logged_in_client.get(f"/secrets/{share_id}").text
    assert "erased when the recipient's download links end, 15 minutes after the last view" in owners_page
    assert "Was due to expire" not in owners_page  # it ended by its views, not its time
    [link] = download_links(page.text)
    clock.advance(minutes=5)
    assert recipient.get(link).data == b"only once"
    clock.advance(minutes=app.config["FILE_LINK_MINUTES"])
    app.test_cli_runner().invoke(args=["purge"])
    assert rows(app, FileChunk) == rows(app, SecretFile) == 0


def test_content_may_be_left_empty_only_when_a_file_is_attached(app, logged_in_client):
    refused = post_files(logged_in_client, [], content="")
    assert refused.status_code == 400 and "or attach a file" in refused.text
    share_id_of(post_files(logged_in_client, [("a.txt", b"x")], content=""))


@pytest.mark.parametrize(
    "files, status, words",
    [
        ([("big.bin", b"x" * 700_001)], 413, None),
        ([("a", b"x" * 400_000), ("b", b"y" * 400_000)], 413, None),
        ([("1", b"1"), ("2", b"2"), ("3", b"3"), ("4", b"4")], 413, None),
        ([("a.txt", b"x"), ("empty.txt", b"")], 400, "empty.txt is empty"),
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(app, logged_in_client, files, status, words):
    response = post_files(logged_in_client, files)
    assert response.status_code == status
    assert words is None or words in response.text
    assert rows(app, Secret) == rows(app, FileChunk) == rows(app, SecretFile) == 0


def test_an_upload_over_the_limit_is_refused_before_it_is_read(app, logged_in_client):
    token = csrf_token(logged_in_client, "/create")
    body = b"--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + token.encode() + b"\r\n--b--\r\n"
    response = logged_in_client.post(
        "/create", data=body, content_type="multipart/form-data; boundary=b", environ_overrides={"CONTENT_LENGTH": "1000000"}
    )
    assert response.status_code == 413


def test_a_cut_off_upload_stores_nothing(app, logged_in_client):
    token = csrf_token(logged_in_client, "/create")
    fields = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (name.encode(), value.encode())
        for name, value in {"csrf_token": token, **secret_form()}.items()
    )
    body = fields + b'--b\r\nContent-Disposition: form-data; name="files"; filename="cut.bin"\r\n\r\n' + b"x" * 200_000
    response = logged_in_client.post(
        "/create", data=body[:-1000], content_type="multipart/form-data; boundary=b", headers={"Content-Length": str(len(body))}
    )
    assert response.status_code == 400
    assert rows(app, Secret) == rows(app, FileChunk) == 0


def test_files_are_refused_to_anyone_not_signed_in_at_the_small_limit(app, client):
    response = client.post(
        "/create", data={"files": [(io.BytesIO(b"x" * 300_000), "a")]}, content_type="multipart/form-data"
    )  # 300 KB: over the small limit, under the files' one
    assert response.status_code == 413
    assert rows(app, FileChunk) == 0


def test_a_hostile_name_is_cleaned_in_the_page_and_the_header(logged_in_client, recipient):
    name = "..\\..\\x\u202egpj.exe\x07" + "n" * 1000
    share_id = share_id_of(post_files(logged_in_client, [(name, b"x")]))
    page = unlock(recipient, share_id)
    [link] = download_links(page.text)
    disposition = recipient.get(link).headers["Content-Disposition"]
    assert "\u202e" not in page.text and "\\" not in disposition and "\x07" not in disposition
    assert len(disposition) < 1200
    assert SECRET_PASSWORD not in page.text


def test_the_owner_sees_how_many_files_and_their_size_never_their_names(logged_in_client):
    share_id = share_id_of(post_files(logged_in_client, [("payroll.xlsx", b"x" * 2048), ("b.txt", b"y" * 1024)]))
    for page in (logged_in_client.get("/dashboard").text, logged_in_client.get(f"/secrets/{share_id}").text):
        assert "2 files, 3.0 KiB" in page and "payroll" not in page


def test_an_upload_survives_the_commits_of_the_checks_before_it(app, logged_in_client, clock):
    # The session's activity is due to be recorded (a commit) on the post.
    share_id = share_id_of(post_files(logged_in_client, [("a.bin", os.urandom(200_000))], pause=lambda: clock.advance(minutes=1)))
    assert load_secret(app, share_id).file_count == 1


def test_no_file_name_content_or_download_token_reaches_the_log(logged_in_client, recipient, log_text):
    share_id = share_id_of(post_files(logged_in_client, [("payroll-2026.xlsx", b"CANARY-in-a-file")]))
    [link] = download_links(unlock(recipient, share_id).text)
    assert recipient.get(link).status_code == 200
    token = link.split("/files/", 1)[1].split("/", 1)[0]
    logged = log_text()
    assert "secret" in logged and all(word not in logged for word in ("payroll", "CANARY-in-a-file", token, share_id))


def test_an_account_keeps_no_more_files_than_the_storage_policy_allows(app, logged_in_client):
    app.config["FILE_STORAGE_PER_USER"] = 250_000
    first = share_id_of(post_files(logged_in_client, [("a.bin", os.urandom(200_000))]))
    refused = post_files(logged_in_client, [("b.bin", os.urandom(60_000))], title="One too many")
    assert refused.status_code == 400
    assert "Your active secrets hold 195.3 KiB of files" in refused.text and "244.1 KiB per account" in refused.text
    assert rows(app, Secret) == 1 and rows(app, SecretFile) == 1  # nothing of the refused upload stays
    assert post_files(logged_in_client, [], title="Text only").status_code == 302  # text needs no storage
    post_form(logged_in_client, f"/secrets/{first}/delete", {})
    assert load_secret(app, first).status == "deleted"
    share_id_of(post_files(logged_in_client, [("b.bin", os.urandom(60_000))]))  # a deleted secret's files no longer count


def test_an_expired_secrets_files_no_longer_count(app, logged_in_client, clock):
    app.config["FILE_STORAGE_PER_USER"] = 250_000
    share_id_of(post_files(logged_in_client, [("a.bin", os.urandom(200_000))], expiration="1h"))
    clock.advance(hours=1)
    share_id_of(post_files(logged_in_client, [("b.bin", os.urandom(200_000))]))
