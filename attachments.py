"""SecureShare's attached files: sealed chunk by chunk while an upload streams in, opened chunk by chunk while a
download streams out. Imports no Flask.

Each secret with files has a random file key. The vault wraps it under the secret's content key (one Argon2id
derivation serves both), so it needs the password and the server key, and is erased with the content. Each chunk
(`CHUNK_BYTES` of plaintext) is sealed with AES-256-GCM under that key; its authenticated data names the share id,
the file's place, the chunk's place and whether it is the last, so no chunk can be dropped, reordered, cut off or
moved to another secret. Each file's name, type and size (and how many files there are) are sealed the same way.
Nothing of a file's plaintext is ever written anywhere but into a chunk being sealed, in memory.
"""

import base64
import binascii
import json
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

import vault
from schema import FileChunk, SecretFile, new_unique_id, share_id_digest

CHUNK_BYTES = 64 * 1024
NAME_MAX_CHARS = 255
EXTENSION_MAX_CHARS = 16
DEFAULT_NAME = "file"
DEFAULT_TYPE = "application/octet-stream"
MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}")
LINK_PURPOSE = "file-link"


# Not ValueErrors: Werkzeug's form parser swallows those and hands over an empty form.
class UploadRefused(Exception):
    """The upload breaks a limit: nothing of it may be stored."""


class TooLarge(UploadRefused):
    """The files add up to more than the limit."""


class TooMany(UploadRefused):
    """More files than the limit."""


class EmptyFile(Exception):
    """A file was chosen but holds no bytes."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class Tampered(Exception):
    """Stored files or chunks do not open as they were sealed: changed, dropped, reordered, cut off or moved."""


@dataclass(frozen=True)
class FileInfo:
    position: int
    name: str
    media_type: str
    size: int


# --- names and types ---------------------------------------------------------------------------------------------


def clean_name(name: str | None) -> str:
    """Return a file name safe to show and to offer as a download: its last path part, no control or format
    characters, at most `NAME_MAX_CHARS` (the extension kept), never empty, never `.` or `..`."""
    name = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if not unicodedata.category(char).startswith("C")).strip()
    if name.strip(".") == "":
        return DEFAULT_NAME
    if len(name) > NAME_MAX_CHARS:
        stem, extension = os.path.splitext(name)
        extension = extension[:EXTENSION_MAX_CHARS]
        name = stem[: NAME_MAX_CHARS - len(extension)] + extension
    return name


def clean_type(media_type: str | None) -> str:
    """Return the browser's media type if it looks like one (parameters dropped), else the generic one.

    It is only ever shown: downloads are always served as attachments of the generic type.
    """
    media_type = (media_type or "").split(";", 1)[0].strip().lower()
    return media_type if MEDIA_TYPE_RE.fullmatch(media_type) else DEFAULT_TYPE


# --- sealing -------------------------------------------------------------------------------------------------------


def _chunk_aad(share_id: str, file_position: int, position: int, last: bool) -> bytes:
    return f"secureshare/file-chunk v1|{share_id}|{file_position}|{position}|{'last' if last else 'more'}".encode()


def _meta_aad(share_id: str, file_position: int) -> bytes:
    return f"secureshare/file-meta v1|{share_id}|{file_position}".encode()


def _seal(cipher: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + cipher.encrypt(nonce, plaintext, aad)


def _open(cipher: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    return cipher.decrypt(sealed[:12], sealed[12:], aad)


# Built once, run through the connection: hundreds of chunks a file need no ORM machinery.
_INSERT_CHUNK = insert(FileChunk)
_CHUNK_AT = select(FileChunk.sealed).where(
    FileChunk.secret_digest == bindparam("digest"),
    FileChunk.file_position == bindparam("file_position"),
    FileChunk.position == bindparam("position"),
)


class Upload:
    """The files of one secret being created, sealed and stored (in the session's open transaction) as they arrive.

    The share id and file key are chosen before the form is read, so chunks can be sealed before the password is
    known; the vault wraps the key when it seals the content, and commits the secret with its files or nothing.
    """

    def __init__(self, session: Session, max_bytes: int, max_files: int):
        self.session = session
        self.share_id = new_unique_id()
        self.files_key = AESGCM.generate_key(bit_length=256)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.total_bytes = 0
        self._cipher = AESGCM(self.files_key)
        self._digest = share_id_digest(self.share_id)
        self._sinks: list[FileSink] = []

    def open_file(self, filename: str | None, media_type: str | None) -> "FileSink":
        """Return where the next file's bytes go (the form parser's stream factory calls this)."""
        sink = FileSink(self, filename, media_type)
        self._sinks.append(sink)
        return sink

    def _take_position(self) -> int:
        """Number files by their first byte, so an empty file input (nothing chosen) leaves no gap."""
        taken = sum(sink.position is not None for sink in self._sinks)
        if taken >= self.max_files:
            raise TooMany()
        return taken

    def _count(self, size: int) -> None:
        self.total_bytes += size
        if self.total_bytes > self.max_bytes:
            raise TooLarge()

    def _store_chunk(self, file_position: int, position: int, plaintext: bytes, last: bool) -> None:
        sealed = _seal(self._cipher, plaintext, _chunk_aad(self.share_id, file_position, position, last))
        row = {"secret_digest": self._digest, "file_position": file_position, "position": position, "sealed": sealed}
        self.session.connection().execute(_INSERT_CHUNK, row)

    def finish(self) -> vault.Attached | None:
        """Seal each file's last chunk and its name, type and size; None when no file was attached.

        :raise EmptyFile: for a file chosen with no bytes in it.
        """
        for sink in self._sinks:
            if sink.position is None and sink.name_given:
                raise EmptyFile(sink.name)
        files = [sink for sink in self._sinks if sink.position is not None]
        for sink in files:
            sink.finish(len(files))
        if not files:
            return None
        return vault.Attached(self.share_id, self.files_key, len(files), self.total_bytes)

    def _store_meta(self, file_position: int, meta: dict) -> None:
        sealed = _seal(self._cipher, json.dumps(meta).encode(), _meta_aad(self.share_id, file_position))
        self.session.execute(insert(SecretFile).values(secret_digest=self._digest, position=file_position, sealed_meta=sealed))


class FileSink:
    """A write-only file for the form parser: bytes go in, sealed chunks go to the database, nothing comes back out.

    The newest chunk is held back until more bytes arrive, so the last one is known when it is sealed.
    """

    def __init__(self, upload: Upload, filename: str | None, media_type: str | None):
        self._upload = upload
        self.name_given = bool(filename)
        self.name = clean_name(filename)
        self.media_type = clean_type(media_type)
        self.position: int | None = None
        self.size = 0
        self._chunks = 0
        self._buffer = bytearray()
        self._finished = False

    def write(self, data: bytes) -> int:
        if not data:
            return 0
        if self.position is None:
            self.position = self._upload._take_position()
        self._upload._count(len(data))
        self.size += len(data)
        self._buffer += data
        while len(self._buffer) > CHUNK_BYTES:
            self._seal_chunk(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def _seal_chunk(self, plaintext: bytes, last: bool) -> None:
        self._upload._store_chunk(self.position, self._chunks, plaintext, last)
        self._chunks += 1

    def finish(self, file_count: int) -> None:
        if self._finished:
            return
        self._seal_chunk(bytes(self._buffer), last=True)
        self._buffer.clear()
        meta = {"name": self.name, "type": self.media_type, "size": self.size, "of": file_count}
        self._upload._store_meta(self.position, meta)
        self._finished = True

    # What the form parser and FileStorage call besides write(): the plaintext is never read back.
    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        self._buffer.clear()


# --- opening -------------------------------------------------------------------------------------------------------


def list_files(session: Session, share_id: str, files_key: bytes) -> list[FileInfo]:
    """Return a secret's files in order.

    :raise Tampered: when a description does not open, or one is missing or extra.
    """
    cipher = AESGCM(files_key)
    rows = session.execute(
        select(SecretFile.position, SecretFile.sealed_meta)
        .where(SecretFile.secret_digest == share_id_digest(share_id))
        .order_by(SecretFile.position)
    ).all()
    files = []
    for expected, (position, sealed) in enumerate(rows):
        try:
            meta = json.loads(_open(cipher, sealed, _meta_aad(share_id, position)))
        except InvalidTag:
            raise Tampered() from None
        if position != expected or meta["of"] != len(rows):
            raise Tampered()
        files.append(FileInfo(position, meta["name"], meta["type"], meta["size"]))
    return files


def open_chunks(session: Session, share_id: str, files_key: bytes, file: FileInfo) -> Iterator[bytes]:
    """Yield a file's plaintext chunk by chunk, one row read at a time.

    :raise Tampered: (while iterating) when a chunk does not open in its place, is missing, or the file is short.
    """
    cipher = AESGCM(files_key)
    place = {"digest": share_id_digest(share_id), "file_position": file.position}
    connection = session.connection()
    position, size = 0, 0
    while True:
        sealed = connection.execute(_CHUNK_AT, {**place, "position": position}).scalar_one_or_none()
        if sealed is None:
            raise Tampered()  # the stream stopped before a last chunk
        plaintext, last = _open_chunk(cipher, sealed, share_id, file.position, position)
        size += len(plaintext)
        yield plaintext
        if last:
            break
        position += 1
    if size != file.size:
        raise Tampered()


def _open_chunk(cipher: AESGCM, sealed: bytes, share_id: str, file_position: int, position: int) -> tuple[bytes, bool]:
    for last in (False, True):
        try:
            return _open(cipher, sealed, _chunk_aad(share_id, file_position, position, last)), last
        except InvalidTag:
            continue
    raise Tampered()


# --- download links ------------------------------------------------------------------------------------------------


def link_token(keys: vault.KeyRing, share_id: str, files_key: bytes, expires_at: datetime) -> str:
    """Return a download token for a secret's files: the file key and an expiry, sealed under the newest server key
    (its label key) and bound to the share id. Only a right password yields the file key, so only an unlock does."""
    payload = f"{int(expires_at.timestamp())}.{_b64(files_key)}"
    sealed = keys.seal_label(keys.newest_id, LINK_PURPOSE, share_id_digest(share_id), payload)
    return f"{keys.newest_id}.{_b64(sealed)}"


def key_of_link(keys: vault.KeyRing, share_id: str, token: str, now: datetime) -> bytes | None:
    """Return the file key a download token carries; None when it is forged, for another secret, or expired."""
    key_id, _, encoded = token.partition(".")
    try:
        sealed = _unb64(encoded)
    except (binascii.Error, ValueError):
        return None
    payload = keys.open_label(key_id, LINK_PURPOSE, share_id_digest(share_id), sealed) if len(sealed) > 12 else None
    if payload is None:
        return None
    expires, _, files_key = payload.partition(".")
    if datetime.fromtimestamp(int(expires), UTC) <= now:
        return None
    return _unb64(files_key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
