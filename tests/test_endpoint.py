"""DataSync's API on the wire: boto3's own `datasync` client, unmodified, against `ferry api`
(a process of its own, on the session's stack), signing with a Ferry access key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
import botocore.session
import pytest
import urllib3
from conftest import Endpoint, S3Server, Stack, run_cli
from helpers import empty_folder, until, write

from api import Ferry
from api.requests import SHAPES

DATASYNC = botocore.session.get_session().get_service_model("datasync")


def raw(
    endpoint: Endpoint,
    target: str,
    body: bytes | dict[str, Any] = b"{}",
    *,
    secret: str | None = None,
    region: str | None = None,
    service: str = "datasync",
    signed: bool = True,
    headers: dict[str, str] | None = None,
) -> urllib3.BaseHTTPResponse:
    """A request as a client builds it by hand, signed with botocore's SigV4 (or not)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = botocore.awsrequest.AWSRequest(
        "POST",
        endpoint.url + "/",
        data=data,
        headers={
            "X-Amz-Target": f"FmrsService.{target}",
            "Content-Type": "application/x-amz-json-1.1",
            **(headers or {}),
        },
    )
    if signed:
        credentials = botocore.credentials.Credentials(
            endpoint.access_key, secret or endpoint.secret_key
        )
        botocore.auth.SigV4Auth(credentials, service, region or endpoint.region).add_auth(request)
    prepared = request.prepare()
    return urllib3.request(
        "POST", prepared.url, body=prepared.body, headers=dict(prepared.headers), retries=False
    )


def error_of(response: urllib3.BaseHTTPResponse) -> tuple[int, str, str]:
    body = response.json()
    return response.status, body["__type"], body["message"]


@pytest.fixture(scope="module")
def datasync(endpoint: Endpoint) -> Any:
    return endpoint.client()


@pytest.fixture
def loose(endpoint: Endpoint) -> Any:
    """A client that sends what it is given, unchecked, as a script with a bug would."""
    return endpoint.client(parameter_validation=False)


def test_every_operation_ferry_has_answers_through_the_endpoint(loose: Any) -> None:
    served = sorted(set(DATASYNC.operation_names) & set(SHAPES))
    assert len(served) >= 40
    answers = {}
    for name in served:
        operation = getattr(loose, botocore.xform_name(name))
        try:
            operation()
            answers[name] = "OK"
        except botocore.exceptions.ClientError as error:
            answers[name] = error.response["Error"]["Code"]
    # Lists answer an empty request; every other operation names the field it lacks.
    assert {n for n, a in answers.items() if a == "OK"} == {
        "ListAgents",
        "ListLocations",
        "ListTasks",
        "ListTaskExecutions",
    }
    assert {a for a in answers.values() if a != "OK"} == {"InvalidRequestException"}


def test_what_ferry_does_not_have_is_refused_as_not_supported(loose: Any) -> None:
    for name in ("CreateLocationAzureBlob", "DescribeLocationFsxOntap", "UpdateLocationAzureBlob"):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            getattr(loose, botocore.xform_name(name))()
        assert refused.value.response["Error"]["Code"] == "InvalidRequestException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert f"{name} is not supported by Ferry" in refused.value.response["Error"]["Message"]


def test_an_unknown_operation_is_refused(endpoint: Endpoint) -> None:
    status, kind, message = error_of(raw(endpoint, "MakeCoffee"))
    assert (status, kind) == (400, "com.amazon.coral.service#UnknownOperationException")
    assert "FmrsService.MakeCoffee" in message


async def test_an_object_storage_location_round_trips(
    datasync: Any, rclone_s3: S3Server, ferry: Ferry
) -> None:
    bucket = rclone_s3.bucket("endpoint")
    created = datasync.create_location_object_storage(
        ServerHostname="127.0.0.1",
        ServerPort=rclone_s3.port,
        ServerProtocol="HTTP",
        BucketName=bucket,
        Subdirectory="/in/here/",
        AccessKey="ferry-test-key",
        SecretKey="ferry-test-secret",
        Tags=[{"Key": "team", "Value": "data"}],
    )
    arn = created["LocationArn"]

    described = datasync.describe_location_object_storage(LocationArn=arn)

    assert described["LocationUri"] == f"object-storage://127.0.0.1/{bucket}/in/here/"
    assert described["ServerPort"] == rclone_s3.port
    assert described["ServerProtocol"] == "HTTP"
    assert described["AccessKey"] == "ferry-test-key"
    assert "SecretKey" not in described
    assert isinstance(described["CreationTime"], datetime)  # epoch seconds, parsed by botocore
    tags = datasync.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert tags == [{"Key": "team", "Value": "data"}]
    # What the API layer holds is what the endpoint created.
    assert (await ferry.describe_location_object_storage({"LocationArn": arn}))[
        "LocationUri"
    ] == described["LocationUri"]
    datasync.delete_location(LocationArn=arn)
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        datasync.describe_location_object_storage(LocationArn=arn)
    assert "not found" in gone.value.response["Error"]["Message"]


async def test_a_task_runs_to_success_through_the_endpoint(
    datasync: Any, ferry: Ferry, workdir: Path
) -> None:
    source, destination = workdir / "source", empty_folder(workdir / "destination")
    write(source / "a" / "file.txt", "through the endpoint")
    locations = [
        (await ferry.create_location_local({"Path": str(path)}))["LocationArn"]
        for path in (source, destination)
    ]
    task = datasync.create_task(
        SourceLocationArn=locations[0],
        DestinationLocationArn=locations[1],
        Name="endpoint",
        Options={"VerifyMode": "POINT_IN_TIME_CONSISTENT", "LogLevel": "OFF"},
    )["TaskArn"]
    assert datasync.describe_task(TaskArn=task)["Status"] == "AVAILABLE"

    execution = datasync.start_task_execution(TaskArn=task)["TaskExecutionArn"]

    def finished() -> dict[str, Any] | None:
        described = datasync.describe_task_execution(TaskExecutionArn=execution)
        return described if described["Status"] in ("SUCCESS", "ERROR") else None

    described = await until(finished, timeout=120, every=0.5)
    assert described["Status"] == "SUCCESS", described.get("Result")
    assert described["FilesTransferred"] == 3  # the root, a/ and a/file.txt, as DataSync counts
    assert (destination / "a" / "file.txt").read_text() == "through the endpoint"
    assert isinstance(described["StartTime"], datetime)


def test_a_request_without_a_signature_is_refused(endpoint: Endpoint) -> None:
    status, kind, message = error_of(raw(endpoint, "ListTasks", signed=False))
    assert (status, kind) == (400, "com.amazon.coral.service#MissingAuthenticationTokenException")
    assert message == "Request is missing Authentication Token"


def test_a_wrong_secret_is_refused(endpoint: Endpoint) -> None:
    status, kind, message = error_of(raw(endpoint, "ListTasks", secret="not-the-secret"))
    assert (status, kind) == (400, "com.amazon.coral.service#InvalidSignatureException")
    assert message.startswith("The request signature we calculated does not match")


def test_a_scope_for_another_region_or_service_is_refused(endpoint: Endpoint) -> None:
    _, kind, message = error_of(raw(endpoint, "ListTasks", region="us-west-2"))
    assert kind.endswith("InvalidSignatureException")
    assert "Credential should be scoped to a valid region, not 'us-west-2'" in message
    _, kind, message = error_of(raw(endpoint, "ListTasks", service="s3"))
    assert kind.endswith("InvalidSignatureException")
    assert "Credential should be scoped to correct service: 'datasync'" in message


def test_an_old_request_is_refused(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    then = datetime.now(UTC) - timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: then.replace(tzinfo=None))
    _, kind, message = error_of(raw(endpoint, "ListTasks"))
    assert kind.endswith("InvalidSignatureException")
    assert message.startswith(f"Signature expired: {then:%Y%m%dT%H%M%SZ} is now earlier than")


async def test_an_unknown_or_inactive_key_is_refused(
    endpoint: Endpoint, stack: Stack, ferry: Ferry
) -> None:
    key = (await ferry.create_access_key({"UserName": "short-lived"}))["AccessKey"]
    mine = Endpoint(endpoint.url, key["AccessKeyId"], key["SecretAccessKey"])
    assert mine.client().list_tasks()["ResponseMetadata"]["HTTPStatusCode"] == 200

    run_cli(stack, "update-access-key", "--access-key-id", key["AccessKeyId"], "--status",
            "Inactive", check=True)  # fmt: skip

    def refused() -> str | None:
        try:
            mine.client().list_tasks()
        except botocore.exceptions.ClientError as error:
            return str(error.response["Error"]["Code"])
        return None

    assert await until(refused, timeout=15, every=0.5) == "UnrecognizedClientException"
    listed = json.loads(run_cli(stack, "list-access-keys", check=True).stdout)
    shown = {k["AccessKeyId"]: k for k in listed["AccessKeyMetadata"]}
    assert shown[key["AccessKeyId"]]["Status"] == "Inactive"
    assert "SecretAccessKey" not in shown[key["AccessKeyId"]]
    await ferry.delete_access_key({"AccessKeyId": key["AccessKeyId"]})
    assert key["AccessKeyId"] not in {
        k["AccessKeyId"] for k in (await ferry.list_access_keys({}))["AccessKeyMetadata"]
    }


def test_every_answer_has_a_request_id(endpoint: Endpoint, datasync: Any) -> None:
    ok = datasync.list_tasks()["ResponseMetadata"]
    refused = raw(endpoint, "ListTasks", signed=False)
    assert len(ok["RequestId"]) == 36
    assert len(refused.headers["x-amzn-RequestId"]) == 36
    assert ok["RequestId"] != refused.headers["x-amzn-RequestId"]
