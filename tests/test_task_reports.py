"""Task reports: DataSync's summary and per-path lists, written to a location of the task's,
with report levels and overrides, for real runs and dry runs."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Stack, run_cli
from helpers import create_task, empty_folder, run, snapshot, write

from api import Ferry
from models.arn import resource_id
from models.errors import InvalidRequestException


async def report_location(ferry: Ferry, workdir: Path) -> tuple[str, Path]:
    folder = workdir / "reports"
    folder.mkdir()
    created = await ferry.create_location_local({"Path": str(folder)})
    return created["LocationArn"], folder


def report_files(folder: Path, task: str, result: dict[str, Any]) -> dict[str, Any]:
    """The report's files by kind (summary, transferred, verified, deleted, skipped)."""
    run_id = resource_id(result["TaskExecutionArn"])
    found: dict[str, Any] = {}
    summary = folder / "Summary-Reports" / resource_id(task) / run_id / f"{run_id}.summary-v1.json"
    if summary.exists():
        found["summary"] = json.loads(summary.read_text())
    detailed = folder / "Detailed-Reports" / resource_id(task) / run_id
    for path in sorted(detailed.glob("*.json")) if detailed.exists() else []:
        kind = path.name.split(".files-")[1].split("-v1-")[0]
        found.setdefault(kind, []).extend(json.loads(path.read_text())[kind.capitalize()])
    return found


async def test_a_standard_report_lists_every_path_at_its_level(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    write(source / "a.txt", "alpha")
    write(source / "sub" / "b.txt", "beta")
    write(destination / "old.txt", "gone soon")
    reports_arn, reports = await report_location(ferry, workdir)
    config = {
        "Destination": {"Location": {"LocationArn": reports_arn, "Subdirectory": "audit"}},
        "OutputType": "STANDARD",
        "ReportLevel": "ERRORS_ONLY",
        "Overrides": {
            "Transferred": {"ReportLevel": "SUCCESSES_AND_ERRORS"},
            "Verified": {"ReportLevel": "SUCCESSES_AND_ERRORS"},
        },
    }
    task = await create_task(
        ferry,
        source,
        destination,
        Options={"VerifyMode": "ONLY_FILES_TRANSFERRED", "PreserveDeletedFiles": "REMOVE"},
        TaskReportConfig=config,
    )

    result = await run(ferry, task)
    found = report_files(reports / "audit", task, result)

    assert result["Status"] == "SUCCESS"
    assert result["ReportResult"] == {"Status": "SUCCESS"}
    assert result["TaskReportConfig"]["OutputType"] == "STANDARD"
    summary = found["summary"]
    assert summary["TaskExecutionArn"] == result["TaskExecutionArn"]
    assert summary["Status"] == "SUCCESS"
    assert summary["FilesTransferred"] == result["FilesTransferred"]
    assert summary["FilesDeleted"] == 1
    assert summary["SourceLocation"]["LocationUri"] == f"local://{source}/"
    transferred = {entry["RelativePath"]: entry for entry in found["transferred"]}
    assert {"/a.txt", "/sub/b.txt", "/sub"} <= set(transferred)
    a = transferred["/a.txt"]
    assert a["Status"] == "SUCCESS" and a["TransferType"] == "CONTENT_AND_METADATA"
    assert a["SrcMetadata"]["ContentSize"] == 5 and a["SrcMetadata"]["Type"] == "file"
    verified = {entry["RelativePath"]: entry for entry in found["verified"]}
    assert verified["/a.txt"]["SrcChecksum"] == verified["/a.txt"]["DstChecksum"]
    assert verified["/a.txt"]["SrcChecksum"] == a["SrcChecksum"]
    # ERRORS_ONLY, and nothing failed: the deletion is not listed.
    assert found["deleted"] == [] and found["skipped"] == []


async def test_a_summary_only_report_and_a_dry_run_report(ferry: Ferry, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    for number in range(3):
        write(source / f"new-{number}.bin", os.urandom(100))
    write(destination / "extra.txt", "only here")
    reports_arn, reports = await report_location(ferry, workdir)
    destination_of_reports = {"Location": {"LocationArn": reports_arn}}
    task = await create_task(
        ferry,
        source,
        destination,
        Options={"PreserveDeletedFiles": "REMOVE"},
        TaskReportConfig={"Destination": destination_of_reports, "OutputType": "SUMMARY_ONLY"},
    )
    before = snapshot(destination)

    dry = await run(
        ferry,
        task,
        DryRun=True,
        TaskReportConfig={
            "Destination": destination_of_reports,
            "OutputType": "STANDARD",
            "ReportLevel": "SUCCESSES_AND_ERRORS",
        },
    )
    planned = report_files(reports, task, dry)
    after_dry_run = snapshot(destination)
    summary_only = await run(ferry, task)
    found = report_files(reports, task, summary_only)

    assert dry["Status"] == "SUCCESS" and dry["DryRun"] is True
    assert after_dry_run == before
    paths = {entry["RelativePath"] for entry in planned["transferred"]}
    assert {f"/new-{n}.bin" for n in range(3)} <= paths
    assert len(planned["transferred"]) == dry["EstimatedFilesToTransfer"]
    assert {entry["Status"] for entry in planned["transferred"]} == {"PLANNED"}
    assert planned["deleted"] == [{"RelativePath": "/extra.txt", "Status": "PLANNED"}]
    assert list(found) == ["summary"]  # no detailed lists
    assert found["summary"]["FilesTransferred"] == summary_only["FilesTransferred"] > 0


async def test_report_destinations_are_checked(ferry: Ferry, stack: Stack, workdir: Path) -> None:
    source, destination = workdir / "source", workdir / "destination"
    source.mkdir()
    empty_folder(destination)
    reports_arn, _ = await report_location(ferry, workdir)
    s3 = {"S3": {"S3BucketArn": "arn:aws:s3:::bucket"}}
    with pytest.raises(InvalidRequestException, match=re.escape("TaskReportConfig.Destination.S3")):
        await create_task(ferry, source, destination, TaskReportConfig={"Destination": s3})
    missing = {"Location": {"LocationArn": reports_arn.replace("loc-", "loc-0")[:-1]}}
    with pytest.raises(
        InvalidRequestException,
        match=re.escape("TaskReportConfig.Destination.Location.LocationArn"),
    ):
        await create_task(ferry, source, destination, TaskReportConfig={"Destination": missing})
    both = run_cli(
        stack,
        "create-task",
        "--source-location-arn",
        reports_arn,
        "--destination-location-arn",
        reports_arn,
        "--task-report-config",
        json.dumps({"Destination": {**s3, "Location": {"LocationArn": reports_arn}}}),
    )
    assert both.returncode == 254
    assert "give exactly one of S3 and Location" in both.stderr
    task = await create_task(
        ferry,
        workdir / "other-source" if (workdir / "other-source").mkdir() is None else source,
        workdir / "other-destination"
        if (workdir / "other-destination").mkdir() is None
        else destination,
        TaskReportConfig={"Destination": {"Location": {"LocationArn": reports_arn}}},
    )
    with pytest.raises(InvalidRequestException, match=f"is used by task {task}"):
        await ferry.delete_location({"LocationArn": reports_arn})
