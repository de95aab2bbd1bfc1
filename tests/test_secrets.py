"""Location secrets across hosts: the keys a worker is given (a variable, a file), a rotation
that old secrets survive, values sealed before key ids that still open, a process without the
key that says which one it lacks, and only the embedded stack making a key."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import S3_SECRET_KEY, S3Server, Stack, run_cli
from helpers import empty_folder, run, write

from api import Ferry
from api.client import connect
from api.secrets import (
    KEY_FILE_VARIABLE,
    KEY_VARIABLE,
    SecretError,
    key_id,
    seal,
    unseal,
    use_key_file,
)
from models.errors import InvalidRequestException

LOCATION = "arn:aws:datasync:xx-ferry-1:000000000000:location/loc-0123456789abcdef0"
# Sealed for LOCATION by the Ferry before sealed values named their key, with this key.
V1_KEY = base64.b64encode(bytes(range(32))).decode()
V1_SEALED = "ferry-sealed:v1:6cyzL8E6cG24FtDXok7wEEzddQbpgvHzr+gw56A23XYG5Cnddz7QD6i+TMfP5hcccg=="


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
    with pytest.raises(SecretError) as refused:
        unseal(before, LOCATION)
    assert str(refused.value) == (
        f"The secret of location {LOCATION} was sealed with key {key_id(base64.b64decode(old))}, "
        f"which this process does not have (its keys, from {KEY_VARIABLE}: "
        f"{key_id(base64.b64decode(new))}): every worker, agent and endpoint needs the key it "
        "was sealed with."
    )


def test_values_sealed_before_key_ids_still_open(keys: pytest.MonkeyPatch) -> None:
    keys.setenv(KEY_VARIABLE, f"{new_key()},{V1_KEY}")  # rotated since, the old key kept
    assert unseal(V1_SEALED, LOCATION) == "sealed before key ids"
    assert seal("now", LOCATION).startswith("ferry-sealed:v2:")

    keys.setenv(KEY_VARIABLE, new_key())
    with pytest.raises(SecretError, match=f"cannot be opened with any key .*{KEY_VARIABLE}"):
        unseal(V1_SEALED, LOCATION)


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


def test_only_the_embedded_stack_makes_a_key(stack: Stack, tmp_path: Path) -> None:
    # A command that creates a location, on a host where no key was given and no `ferry dev`
    # made one, is refused before anything is sent, and makes no key of its own.
    created = run_cli(
        stack,
        "create-location-object-storage",
        "--server-hostname", "127.0.0.1", "--bucket-name", "never-created",
        "--access-key", "ak", "--secret-key", "sk",
        FERRY_SECRET_KEY="", FERRY_DATA_DIR=str(tmp_path),
    )  # fmt: skip
    assert created.returncode == 254, created.stderr
    assert (
        "InvalidRequestException) when calling the CreateLocationObjectStorage operation: "
        "SecretKey: No secret key to seal the secret of location arn:aws:datasync:"
    ) in created.stderr
    assert f"set {KEY_VARIABLE} (or {KEY_FILE_VARIABLE}, a file)" in created.stderr
    assert not (tmp_path / "secret.key").exists()
    listed = run_cli(stack, "list-locations", check=True).stdout
    assert "never-created" not in listed  # nothing was created


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
