"""Manifests: only the paths a CSV lists are prepared, transferred and verified."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import create_task, empty_folder, run, write

from api import Ferry
from models.errors import InvalidRequestException


async def test_only_the_listed_files_are_transferred_and_a_missing_one_is_reported(
    ferry: Ferry, workdir: Path
) -> None:
    source, destination, lists = workdir / "source", workdir / "destination", workdir / "lists"
    for name in ("a.txt", "b.txt", "sub/c d.txt", "sub/e,f.txt", "skipped/g.txt"):
        write(source / name, name)
    empty_folder(destination)
    # RFC 4180: quoted fields, a comma inside one, CRLF line ends, a version column.
    write(
        lists / "manifest.csv",
        'a.txt\r\n"sub/c d.txt"\r\n"sub/e,f.txt",v1\r\nmissing.txt\r\na.txt\r\n../escape\r\n',
    )
    lists_arn = (await ferry.create_location_local({"Path": str(lists)}))["LocationArn"]
    manifest = {
        "Action": "TRANSFER",
        "Format": "CSV",
        "Source": {"Location": {"LocationArn": lists_arn, "ManifestObjectPath": "manifest.csv"}},
    }
    task = await create_task(ferry, source, destination, ManifestConfig=manifest)

    result = await run(ferry, task)

    written = sorted(str(p.relative_to(destination)) for p in destination.rglob("*.txt"))
    assert written == ["a.txt", "sub/c d.txt", "sub/e,f.txt"]
    assert (destination / "sub" / "e,f.txt").read_text() == "sub/e,f.txt"
    assert result["FilesTransferred"] == 3
    assert result["Status"] == "ERROR"
    detail = result["Result"]["ErrorDetail"]
    assert "/missing.txt (missing: listed in the manifest but not in the source location)" in detail
    assert "../escape" in detail and "not a relative path" in detail
    # Verification looked at the listed files only: b.txt and skipped/ are not "missing".
    assert result["Result"]["VerifyStatus"] == "SUCCESS"
    assert result["FilesVerified"] == 3
    assert result["ManifestConfig"]["Source"]["Location"]["LocationArn"] == lists_arn


async def test_a_manifest_must_come_from_a_location(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    source.mkdir()
    empty_folder(destination)
    s3 = {"S3": {"ManifestObjectPath": "m.csv", "S3BucketArn": "arn:aws:s3:::bucket"}}
    with pytest.raises(InvalidRequestException, match=re.escape("ManifestConfig.Source.S3")):
        await create_task(ferry, source, destination, ManifestConfig={"Source": s3})
