"""Location secrets (object storage secret keys, SMB passwords) sealed before they reach Temporal.

A secret is encrypted by the operations layer as a location is created or updated, travels and
rests in workflow histories only as `ferry-sealed:v1:...`, and is opened only by the storage
adapter in the worker that uses it. Everything else in a history stays readable in the Temporal
UI and CLI, which a codec over whole payloads would hide behind a codec server.

The key (AES-256-GCM) comes from FERRY_SECRET_KEY (32 bytes, base64), else from the file
`secret.key` in Ferry's data directory, made on first use. Every process that creates locations or
runs their transfers needs the same key: on several hosts, set FERRY_SECRET_KEY on each.
Each sealed value is bound to its location's ARN, so it cannot be moved to another location.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_VARIABLE = "FERRY_SECRET_KEY"
KEY_FILE = "secret.key"
SEALED = "ferry-sealed:v1:"
_NONCE_BYTES = 12


class SecretError(Exception):
    """A secret that cannot be sealed or opened here, with what to do about it."""


def use_key_file(data_dir: Path) -> None:
    """Make `data_dir`/secret.key this process's key unless FERRY_SECRET_KEY names one; the
    variable is then set, so that the processes this one starts share the key."""
    if os.environ.get(KEY_VARIABLE):
        return
    path = data_dir / KEY_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = base64.b64encode(os.urandom(32)).decode()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            text = path.read_text(encoding="ascii").strip()
        else:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(text + "\n")
    os.environ[KEY_VARIABLE] = text


def seal(secret: str, location_arn: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher().encrypt(nonce, secret.encode(), location_arn.encode())
    return SEALED + base64.b64encode(nonce + sealed).decode()


def unseal(value: str, location_arn: str) -> str:
    from cryptography.exceptions import InvalidTag

    if not value.startswith(SEALED):
        raise SecretError(f"The secret of location {location_arn} is not sealed by Ferry.")
    try:
        raw = base64.b64decode(value[len(SEALED) :], validate=True)
        plain = _cipher().decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], location_arn.encode())
    except (InvalidTag, binascii.Error, ValueError):
        raise SecretError(
            f"The secret of location {location_arn} cannot be opened with this process's "
            f"{KEY_VARIABLE}: every worker and agent needs the key the location was created with."
        ) from None
    return plain.decode()


def _cipher() -> AESGCM:
    # Imported here: loading the library costs a tenth of a second, which commands that seal
    # or open nothing should not pay.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    text = os.environ.get(KEY_VARIABLE, "")
    if not text:
        raise SecretError(
            f"No secret key: set {KEY_VARIABLE} (32 bytes, base64) or give Ferry a data directory."
        )
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise SecretError(f"{KEY_VARIABLE} must be 32 bytes in base64 (44 characters).")
    return AESGCM(key)
