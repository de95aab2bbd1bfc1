"""Location secrets across hosts: the keys a worker is given (a variable, a file), a rotation
that old secrets survive, and a worker without the key that says what it lacks."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import S3_SECRET_KEY, S3Server, Stack
from helpers import empty_folder, run, write

from api import Ferry
from api.client import connect
from api.secrets import (
    KEY_FILE_VARIABLE,
    KEY_VARIABLE,
    SecretError,
    seal,
    unseal,
    use_key_file,
)
from models.errors import InvalidRequestException

LOCATION = "arn:aws:datasync:xx-ferry-1:000000000000:location/loc-0123456789abcdef0"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No key from the test session's environment."""
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.delenv(KEY_FILE_VARIABLE, raising=False)
    return monkeypatch


def test_after_a_rotation_old_secrets_open_and_new_ones_use_the_new_key(
    keys: pytest.MonkeyPatch,
) -> None:
    old, new = new_key(), new_key()
    keys.setenv(KEY_VARIABLE, old)
    before = seal("hunter2", LOCATION)

    keys.setenv(KEY_VARIABLE, f"{new},{old}")  # the new key first; the old one still opens
    after = seal("correct horse", LOCATION)

    assert unseal(before, LOCATION) == "hunter2"
    assert unseal(after, LOCATION) == "correct horse"
    keys.setenv(KEY_VARIABLE, new)  # the old key retired
    assert unseal(after, LOCATION) == "correct horse"
    with pytest.raises(SecretError, match=f"cannot be opened with any key.*{KEY_VARIABLE}"):
        unseal(before, LOCATION)


def test_keys_come_from_a_file(keys: pytest.MonkeyPatch, tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    keys.setenv(KEY_VARIABLE, old)
    sealed = seal("s3cret", LOCATION)
    keys.delenv(KEY_VARIABLE)
    (tmp_path / "keys").write_text(f"{new}\n{old}\n")
    keys.setenv(KEY_FILE_VARIABLE, str(tmp_path / "keys"))

    assert unseal(sealed, LOCATION) == "s3cret"
    keys.setenv(KEY_FILE_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(SecretError, match=f"{KEY_FILE_VARIABLE}=.*missing cannot be read"):
        unseal(sealed, LOCATION)


def test_without_a_key_the_error_names_what_to_set(
    keys: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keys.setenv(KEY_VARIABLE, new_key())
    sealed = seal("s3cret", LOCATION)
    keys.delenv(KEY_VARIABLE)
    use_key_file(tmp_path, make=False)  # a worker: it never makes a key of its own

    with pytest.raises(SecretError) as refused:
        unseal(sealed, LOCATION)
    assert not (tmp_path / "secret.key").exists()
    assert str(refused.value) == (
        f"No secret key to open the secret of location {LOCATION} with: set {KEY_VARIABLE} "
        f"(or {KEY_FILE_VARIABLE}, a file) to the key the locations were sealed with, the same "
        "on every worker and agent."
    )
    keys.setenv(KEY_VARIABLE, "too-short")
    with pytest.raises(SecretError, match="key 1 must be 32 bytes in base64"):
        unseal(sealed, LOCATION)


async def test_a_worker_without_the_key_fails_the_execution_naming_it(
    own_stack: Callable[..., Stack], rclone_s3: S3Server, workdir: Path
) -> None:
    stack = own_stack(workers=1)  # with the tests' key, which seals
    ferry = Ferry(await connect(stack.address))
    request = {
        "ServerHostname": "127.0.0.1",
        "ServerPort": rclone_s3.port,
        "ServerProtocol": "HTTP",
        "BucketName": rclone_s3.bucket("sealed"),
        "AccessKey": "ferry-test-key",
        "SecretKey": S3_SECRET_KEY,
    }
    destination = (await ferry.create_location_object_storage(request))["LocationArn"]
    write(workdir / "source" / "a.txt", "a")
    empty_folder(workdir / "other")
    source = (await ferry.create_location_local({"Path": str(workdir / "source")}))["LocationArn"]
    task = (
        await ferry.create_task(
            {"SourceLocationArn": source, "DestinationLocationArn": destination}
        )
    )["TaskArn"]

    # The worker with the key goes; one without it (nor a secret.key in its data directory)
    # takes over.
    stack.stop_worker(stack.workers[0])
    stack.start_worker(FERRY_SECRET_KEY="")

    result = await run(ferry, task)
    with pytest.raises(InvalidRequestException, match="No secret key to open the secret"):
        await ferry.create_location_object_storage(request)

    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "LocationUnavailable"
    detail = result["Result"]["ErrorDetail"]
    assert f"No secret key to open the secret of location {destination}" in detail
    assert KEY_VARIABLE in detail and KEY_FILE_VARIABLE in detail
    assert "Traceback" not in detail
