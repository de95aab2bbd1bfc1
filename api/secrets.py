"""Secrets (object storage secret keys, SMB passwords, keytabs, the endpoint's access keys)
sealed before they reach Temporal.

A secret is encrypted (AES-256-GCM) by the operations layer as a location is created or updated,
travels and rests in workflow histories only as `ferry-sealed:v2:KEYID:...` (KEYID: a short id
of the key that sealed it, so that a process without that key can say which one it lacks;
`ferry-sealed:v1:...`, sealed before, has none and still opens), and is opened only where
it is used: a location's by the storage adapter in the worker or agent that reaches it, an access
key's by the endpoint that checks signatures with it. Everything else in a history
stays readable in the Temporal UI and CLI, which a codec over whole payloads would hide behind a
codec server. Each sealed value is bound to what it belongs to (a location's ARN, an access key's
id), so it cannot be moved to another.

The keys, 32 bytes in base64 each, come from the first of:
- FERRY_SECRET_KEY: one key, or several separated by commas;
- FERRY_SECRET_KEY_FILE: a file with one key per line (a mounted secret, say);
- `secret.key` in Ferry's data directory, which the embedded stack (`ferry dev`, `ferry demo`)
  makes on first use and every command on its host then finds. Nothing else makes a key: a
  worker, an agent or a command that creates a location on a host of its own must be given the
  key in use, and without one it says so (sealing is refused, opening fails the location).
The first key seals; every key opens. To rotate, put a new key first and keep the old ones
after it until every location has been updated with its secret again (sealed with the new key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from api.settings import data_dir

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_VARIABLE = "FERRY_SECRET_KEY"
KEY_FILE_VARIABLE = "FERRY_SECRET_KEY_FILE"
KEY_FILE = "secret.key"
SEALED = "ferry-sealed:v2:"  # then the sealing key's id, ":", nonce and ciphertext in base64
SEALED_V1 = "ferry-sealed:v1:"  # nonce and ciphertext, without a key id
_NONCE_BYTES = 12


class SecretError(Exception):
    """A secret that cannot be sealed or opened here, with what to do about it."""


def use_key_file(directory: Path, *, make: bool) -> None:
    """Unless FERRY_SECRET_KEY or FERRY_SECRET_KEY_FILE names the keys, use `directory`/secret.key
    (made first if `make`, for the embedded stack), through FERRY_SECRET_KEY_FILE, so that the
    processes this one starts use the same keys."""
    if os.environ.get(KEY_VARIABLE) or os.environ.get(KEY_FILE_VARIABLE):
        return
    path = directory / KEY_FILE
    if make and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    if path.exists():
        os.environ[KEY_FILE_VARIABLE] = str(path)


def seal(secret: str, owner: str) -> str:
    """`secret` sealed for `owner`: a location's ARN, or what else it belongs to."""
    key_id, cipher = _ciphers(owner, sealing=True)[0]
    nonce = os.urandom(_NONCE_BYTES)
    sealed = cipher.encrypt(nonce, secret.encode(), owner.encode())
    return f"{SEALED}{key_id}:{base64.b64encode(nonce + sealed).decode()}"


def unseal(value: str, owner: str) -> str:
    from cryptography.exceptions import InvalidTag

    if value.startswith(SEALED):
        key_id, _, text = value[len(SEALED) :].partition(":")
    elif value.startswith(SEALED_V1):
        key_id, text = None, value[len(SEALED_V1) :]
    else:
        raise SecretError(f"The secret of {_named(owner)} is not sealed by Ferry.")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    ciphers = _ciphers(owner)
    for found, cipher in ciphers:
        if key_id is not None and found != key_id:
            continue
        try:
            plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], owner.encode())
        except (InvalidTag, ValueError):
            continue
        return plain.decode()
    had = ", ".join(found for found, _ in ciphers)
    problem = (
        f"was sealed with key {key_id}, which this process does not have (its keys, from "
        f"{_source()}: {had})"
        if key_id
        else f"cannot be opened with any key this process has (from {_source()}: {had})"
    )
    raise SecretError(
        f"The secret of {_named(owner)} {problem}: every worker, agent and endpoint needs the "
        "key it was sealed with."
    )


def key_id(key: bytes) -> str:
    """A key's short name in sealed values and messages: it tells keys apart, and says
    nothing of the key."""
    return hashlib.sha256(b"ferry-secret-key-id:" + key).hexdigest()[:8]


def _named(owner: str) -> str:
    return f"location {owner}" if owner.startswith("arn:") else owner


def _key_file() -> str | None:
    """The data directory's key, where the embedded stack made one (commands that seal a
    secret for it find it without being told)."""
    path = data_dir() / KEY_FILE
    return str(path) if path.exists() else None


def _source() -> str:
    if os.environ.get(KEY_VARIABLE):
        return KEY_VARIABLE
    return f"{KEY_FILE_VARIABLE}={os.environ.get(KEY_FILE_VARIABLE) or _key_file()}"


def _keys() -> list[str]:
    """The keys as given, first the one that seals; none if this process was given none."""
    if os.environ.get(KEY_VARIABLE):
        return [key.strip() for key in os.environ[KEY_VARIABLE].split(",") if key.strip()]
    path = os.environ.get(KEY_FILE_VARIABLE) or _key_file()
    if not path:
        return []
    try:
        text = Path(path).read_text(encoding="ascii")
    except OSError as error:
        raise SecretError(f"{KEY_FILE_VARIABLE}={path} cannot be read: {error.strerror}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _ciphers(owner: str, *, sealing: bool = False) -> list[tuple[str, AESGCM]]:
    """The keys given to this process, by id, the one that seals first."""
    # Imported here: loading the library costs a tenth of a second, which commands that seal
    # or open nothing should not pay.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    keys = _keys()
    if not keys:
        if sealing:
            raise SecretError(
                f"No secret key to seal the secret of {_named(owner)} with: set {KEY_VARIABLE} "
                f"(or {KEY_FILE_VARIABLE}, a file) to the key every worker and agent is given. "
                "Only the embedded stack (`ferry dev`) makes one, in its data directory."
            )
        raise SecretError(
            f"No secret key to open the secret of {_named(owner)} with: set {KEY_VARIABLE} (or "
            f"{KEY_FILE_VARIABLE}, a file) to the key the locations were sealed with, the same "
            "on every worker and agent."
        )
    ciphers = []
    for number, text in enumerate(keys, 1):
        try:
            key = base64.b64decode(text, validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 32:
            raise SecretError(
                f"{_source()}: key {number} must be 32 bytes in base64 (44 characters)."
            )
        ciphers.append((key_id(key), AESGCM(key)))
    return ciphers
