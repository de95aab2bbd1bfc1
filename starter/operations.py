"""DataSync's operations, one method each, over a Temporal client.

Each takes a request and returns a response in the API's shapes (dicts with DataSync's field
names, timestamps as datetimes), raising InvalidRequestException or InternalException. The `ferry`
CLI is a thin shell over this class; an HTTP front end speaking DataSync's JSON protocol can call
the same methods through `call`.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.metadata
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.agents import agent_presence, last_poll
from activities.secrets import SecretError, seal, use_key_file
from models.agents import Activation, Agent
from models.arn import AGENT_ARN, TASK_EXECUTION_ARN, arn_prefix, execution_id, new_id, task_arn_of
from models.arn import TASK_ARN as TASK_ARN_PATTERN
from models.errors import (
    INVALID_REQUEST,
    DataSyncError,
    ErrorCode,
    InternalException,
    InvalidRequestException,
)
from models.execution import TERMINAL, Counters
from models.filters import check_filters
from models.locations import (
    Ec2Settings,
    EfsLocation,
    FsxLustreLocation,
    FsxOpenZfsLocation,
    FsxWindowsLocation,
    HdfsLocation,
    HdfsNameNode,
    HdfsQop,
    LocalLocation,
    Location,
    LocationBase,
    NfsLocation,
    NfsMountOptions,
    ObjectStorageLocation,
    S3AccessConfig,
    S3Location,
    SmbLocation,
    SmbMountOptions,
    aws_file_system,
)
from models.options import resolve_options
from models.registry import AgentUpdate, ExecutionQueue, ExecutionStart, Tagging, TaskUpdate
from models.tags import TagListEntry
from models.tasks import Task
from models.temporal import (
    DESCRIPTION_MEMO,
    EXECUTION_STATUS,
    EXECUTION_WORKFLOW,
    REGISTRY_WORKFLOW,
    REGISTRY_WORKFLOW_ID,
    TAGS_MEMO,
    TASK_ARN,
    TASK_QUEUE,
)
from starter.dev import data_dir
from starter.requests import (
    SHAPES,
    AgentArnRequest,
    CreateAgentRequest,
    CreateLocationEfsRequest,
    CreateLocationFsxLustreRequest,
    CreateLocationFsxOpenZfsRequest,
    CreateLocationFsxWindowsRequest,
    CreateLocationHdfsRequest,
    CreateLocationLocalRequest,
    CreateLocationNfsRequest,
    CreateLocationObjectStorageRequest,
    CreateLocationS3Request,
    CreateLocationSmbRequest,
    CreateTaskRequest,
    Ec2ConfigShape,
    HdfsNameNodeShape,
    ListAgentsRequest,
    ListLocationsRequest,
    ListTagsForResourceRequest,
    ListTaskExecutionsRequest,
    ListTasksRequest,
    LocationArnRequest,
    NfsMountOptionsShape,
    QopConfigurationShape,
    Request,
    SmbMountOptionsShape,
    StartTaskExecutionRequest,
    TagResourceRequest,
    TaskArnRequest,
    TaskExecutionArnRequest,
    UntagResourceRequest,
    UpdateAgentRequest,
    UpdateLocationEfsRequest,
    UpdateLocationFsxLustreRequest,
    UpdateLocationFsxOpenZfsRequest,
    UpdateLocationFsxWindowsRequest,
    UpdateLocationHdfsRequest,
    UpdateLocationNfsRequest,
    UpdateLocationObjectStorageRequest,
    UpdateLocationS3Request,
    UpdateLocationSmbRequest,
    UpdateTaskExecutionRequest,
    UpdateTaskRequest,
    parse,
)

T = TypeVar("T")
L = TypeVar("L", bound=LocationBase)
Response = dict[str, Any]

QUERY_TIMEOUT = timedelta(seconds=10)
_TIME_FIELDS = ("StartTime", "LaunchTime", "EndTime")


class Ferry:
    """The DataSync API over Temporal."""

    def __init__(self, client: Client, region: str | None = None, account: str | None = None):
        self.client = client
        self.region = region or os.environ.get("FERRY_REGION", "local")
        self.account = account or os.environ.get("FERRY_ACCOUNT_ID", "000000000000")
        if not re.fullmatch(r"[a-z\-0-9]+", self.region) or not re.fullmatch(
            r"[0-9]{12}", self.account
        ):
            raise InvalidRequestException(
                "FERRY_REGION must be lower-case letters, digits and '-', and FERRY_ACCOUNT_ID "
                "twelve digits."
            )
        self._worker_seen = False

    async def call(self, operation: str, request: dict[str, Any]) -> Response:
        """Run an operation by its DataSync name (`CreateTask`)."""
        if operation not in SHAPES:
            raise InvalidRequestException(f"Unknown operation {operation}.")
        return await getattr(self, method_name(operation))(request)

    # --- agents --------------------------------------------------------------------------------

    async def create_agent(self, request: dict[str, Any]) -> Response:
        req = parse(CreateAgentRequest, request)
        arn = f"{arn_prefix(self.region, self.account)}agent/{new_id('agent')}"
        agent = Agent(AgentArn=arn, Name=req.AgentName, CreationTime=_now())
        await self._update("create_agent", agent, req.ActivationKey, req.Tags)
        return {"AgentArn": arn}

    async def describe_agent(self, request: dict[str, Any]) -> Response:
        req = parse(AgentArnRequest, request)
        agent = await self._agent(req.AgentArn)
        status, last = await agent_presence(self.client, agent.AgentArn)
        return agent.describe(status, last, _version())

    async def list_agents(self, request: dict[str, Any]) -> Response:
        req = parse(ListAgentsRequest, request)
        agents = sorted(
            await self._query("agents", list[Agent]), key=lambda x: (x.CreationTime, x.AgentArn)
        )
        page, token = _page(agents, lambda x: x.AgentArn, req.MaxResults, req.NextToken)
        entries = []
        for agent in page:
            status, _ = await agent_presence(self.client, agent.AgentArn)
            entry = {"AgentArn": agent.AgentArn, "Status": status}
            entry["Platform"] = {"Version": _version()}
            if agent.Name is not None:
                entry["Name"] = agent.Name
            entries.append(entry)
        return _listed("Agents", entries, token)

    async def update_agent(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateAgentRequest, request)
        await self._update("update_agent", AgentUpdate(AgentArn=req.AgentArn, Name=req.Name))
        return {}

    async def delete_agent(self, request: dict[str, Any]) -> Response:
        req = parse(AgentArnRequest, request)
        await self._update("delete_agent", req.AgentArn)
        return {}

    # The agent process's side of activation (not DataSync operations).

    async def register_activation(self, key: str, seconds: int) -> Activation:
        return Activation.model_validate(await self._update("register_activation", key, seconds))

    async def activation(self, key: str) -> Activation | None:
        found = await self._query("activation", list[Activation], key)
        return found[0] if found else None

    async def agent_exists(self, agent_arn: str) -> bool:
        return any(a.AgentArn == agent_arn for a in await self._query("agents", list[Agent]))

    async def agent_locations(self, agent_arn: str) -> list[str]:
        """The ARNs of the locations that name the agent."""
        return await self._query("agent_locations", list[str], agent_arn)

    # --- locations -----------------------------------------------------------------------------

    async def create_location_local(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationLocalRequest, request)
        if not req.Path.startswith("/"):
            raise InvalidRequestException(f"Path: {req.Path!r} must be an absolute path.")
        arn = self._new_location_arn()
        path = os.path.normpath(req.Path)
        location = LocalLocation(
            LocationArn=arn, CreationTime=_now(), Path=path, AgentArns=tuple(req.AgentArns or ())
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_local(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, LocalLocation)).describe()

    async def create_location_s3(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationS3Request, request)
        arn = self._new_location_arn()
        location = S3Location(
            LocationArn=arn,
            CreationTime=_now(),
            AgentArns=tuple(req.AgentArns or ()),
            S3BucketArn=req.S3BucketArn,
            Subdirectory=req.Subdirectory,
            S3StorageClass=req.S3StorageClass,
            S3Config=S3AccessConfig(**(req.S3Config.model_dump() if req.S3Config else {})),
            EndpointUrl=req.EndpointUrl,
            FolderMarkers=req.FolderMarkers,
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_s3(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, S3Location)).describe()

    async def update_location_s3(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationS3Request, request)
        location = await self._location(req.LocationArn, S3Location)
        changes = req.model_dump(exclude_none=True, exclude={"LocationArn"})
        if req.S3Config is not None:
            changes["S3Config"] = S3AccessConfig(**req.S3Config.model_dump())
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_object_storage(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationObjectStorageRequest, request)
        arn = self._new_location_arn()
        location = ObjectStorageLocation(
            LocationArn=arn,
            CreationTime=_now(),
            AgentArns=tuple(req.AgentArns or ()),
            ServerHostname=req.ServerHostname,
            ServerPort=req.ServerPort or (443 if req.ServerProtocol == "HTTPS" else 80),
            ServerProtocol=req.ServerProtocol,
            BucketName=req.BucketName,
            Subdirectory=req.Subdirectory,
            AccessKey=req.AccessKey,
            SecretKey=_sealed(req.SecretKey, arn),
            ServerCertificate=req.ServerCertificate,
            FolderMarkers=req.FolderMarkers,
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_object_storage(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, ObjectStorageLocation)).describe()

    async def update_location_object_storage(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationObjectStorageRequest, request)
        location = await self._location(req.LocationArn, ObjectStorageLocation)
        changes = req.model_dump(exclude_none=True, exclude={"LocationArn", "SecretKey"})
        if "AgentArns" in changes:
            changes["AgentArns"] = tuple(changes["AgentArns"])
        if "ServerProtocol" in changes and req.ServerPort is None:
            changes["ServerPort"] = 443 if req.ServerProtocol == "HTTPS" else 80
        if req.SecretKey is not None:
            changes["SecretKey"] = _sealed(req.SecretKey, location.LocationArn)
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    # NFS, SMB and the AWS file systems reached by them. Secrets (Password, KerberosKeytab) are
    # sealed before they reach Temporal and never shown.

    async def create_location_nfs(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationNfsRequest, request)
        arn = self._new_location_arn()
        location = NfsLocation(
            LocationArn=arn,
            CreationTime=_now(),
            AgentArns=tuple(req.OnPremConfig.AgentArns if req.OnPremConfig else ()),
            ServerHostname=req.ServerHostname,
            ServerPort=req.ServerPort,
            Subdirectory=req.Subdirectory,
            MountOptions=NfsMountOptions(**req.MountOptions.model_dump()),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_nfs(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, NfsLocation)).describe()

    async def update_location_nfs(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationNfsRequest, request)
        location = await self._location(req.LocationArn, NfsLocation)
        changes = _changes(req, exclude={"OnPremConfig"})
        if req.OnPremConfig is not None:
            changes["AgentArns"] = tuple(req.OnPremConfig.AgentArns)
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_smb(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationSmbRequest, request)
        _check_authentication(req.model_dump(exclude_none=True), _SMB_AUTHENTICATION)
        arn = self._new_location_arn()
        location = SmbLocation(
            LocationArn=arn,
            CreationTime=_now(),
            **_changes(req, exclude={"Tags", "Password", "KerberosKeytab"}),
            **_smb_secrets(req, arn),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_smb(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, SmbLocation)).describe()

    async def update_location_smb(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationSmbRequest, request)
        location = await self._location(req.LocationArn, SmbLocation)
        changes = _changes(req, exclude={"Password", "KerberosKeytab"})
        changes.update(_smb_secrets(req, location.LocationArn))
        _check_authentication(
            {**location.model_dump(exclude_none=True), **_changes(req)},
            _SMB_AUTHENTICATION,
            updating=True,
        )
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_efs(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationEfsRequest, request)
        _check_efs_tunnel(req.model_dump())
        arn = self._new_location_arn()
        location = EfsLocation(
            LocationArn=arn,
            CreationTime=_now(),
            **_changes(req, exclude={"Tags", "ServerHostname"}),
            ServerHostname=req.ServerHostname or _efs_hostname(req.EfsFilesystemArn),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_efs(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, EfsLocation)).describe()

    async def update_location_efs(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationEfsRequest, request)
        location = await self._location(req.LocationArn, EfsLocation)
        # "" clears an access point or role, as in DataSync.
        changes = {name: value or None for name, value in _changes(req).items()}
        updated = location.model_copy(update=changes)
        if updated.ServerHostname == _efs_hostname(updated.EfsFilesystemArn):
            _check_efs_tunnel(updated.model_dump(exclude={"ServerHostname"}))
        await self._update("update_location", updated)
        return {}

    async def create_location_fsx_windows(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationFsxWindowsRequest, request)
        arn = self._new_location_arn()
        location = FsxWindowsLocation(
            LocationArn=arn,
            CreationTime=_now(),
            **_changes(req, exclude={"Tags", "Password", "ServerHostname"}),
            ServerHostname=req.ServerHostname or _fsx_hostname(req.FsxFilesystemArn),
            Password=_sealed(req.Password, arn, "Password"),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_fsx_windows(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, FsxWindowsLocation)).describe()

    async def update_location_fsx_windows(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationFsxWindowsRequest, request)
        location = await self._location(req.LocationArn, FsxWindowsLocation)
        changes = _changes(req, exclude={"Password"})
        if req.Password is not None:
            changes["Password"] = _sealed(req.Password, location.LocationArn, "Password")
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_fsx_open_zfs(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationFsxOpenZfsRequest, request)
        arn = self._new_location_arn()
        location = FsxOpenZfsLocation(
            LocationArn=arn,
            CreationTime=_now(),
            **_changes(req, exclude={"Tags", "Protocol", "ServerHostname"}),
            ServerHostname=req.ServerHostname or _fsx_hostname(req.FsxFilesystemArn),
            MountOptions=NfsMountOptions(**req.Protocol.NFS.MountOptions.model_dump()),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_fsx_open_zfs(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, FsxOpenZfsLocation)).describe()

    async def update_location_fsx_open_zfs(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationFsxOpenZfsRequest, request)
        location = await self._location(req.LocationArn, FsxOpenZfsLocation)
        changes = _changes(req, exclude={"Protocol"})
        if req.Protocol is not None:
            changes["MountOptions"] = NfsMountOptions(**req.Protocol.NFS.MountOptions.model_dump())
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    async def create_location_fsx_lustre(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationFsxLustreRequest, request)
        arn = self._new_location_arn()
        location = FsxLustreLocation(
            LocationArn=arn, CreationTime=_now(), **_changes(req, exclude={"Tags"})
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_fsx_lustre(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, FsxLustreLocation)).describe()

    async def update_location_fsx_lustre(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationFsxLustreRequest, request)
        location = await self._location(req.LocationArn, FsxLustreLocation)
        await self._update("update_location", location.model_copy(update=_changes(req)))
        return {}

    async def create_location_hdfs(self, request: dict[str, Any]) -> Response:
        req = parse(CreateLocationHdfsRequest, request)
        _check_authentication(req.model_dump(exclude_none=True), _HDFS_AUTHENTICATION)
        arn = self._new_location_arn()
        location = HdfsLocation(
            LocationArn=arn,
            CreationTime=_now(),
            **_changes(req, exclude={"Tags", "KerberosKeytab", "QopConfiguration"}),
            QopConfiguration=_qop(req.QopConfiguration),
            KerberosKeytab=_sealed(req.KerberosKeytab, arn, "KerberosKeytab"),
        )
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location_hdfs(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, HdfsLocation)).describe()

    async def update_location_hdfs(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateLocationHdfsRequest, request)
        location = await self._location(req.LocationArn, HdfsLocation)
        changes = _changes(req, exclude={"KerberosKeytab", "QopConfiguration"})
        if req.KerberosKeytab is not None:
            changes["KerberosKeytab"] = _sealed(
                req.KerberosKeytab, location.LocationArn, "KerberosKeytab"
            )
        if req.QopConfiguration is not None:
            changes["QopConfiguration"] = _qop(req.QopConfiguration)
        _check_authentication(
            {**location.model_dump(exclude_none=True), **_changes(req)},
            _HDFS_AUTHENTICATION,
            updating=True,
        )
        await self._update("update_location", location.model_copy(update=changes))
        return {}

    def _new_location_arn(self) -> str:
        return f"{arn_prefix(self.region, self.account)}location/{new_id('loc')}"

    async def list_locations(self, request: dict[str, Any]) -> Response:
        req = parse(ListLocationsRequest, request)
        locations = await self._query("locations", list[Location])
        chosen = [
            location
            for location in sorted(locations, key=lambda x: (x.CreationTime, x.LocationArn))
            if all(
                _matches(_location_field(location, f.Name), f.Operator, f.Values)
                for f in req.Filters
            )
        ]
        page, token = _page(chosen, lambda x: x.LocationArn, req.MaxResults, req.NextToken)
        entries = [{"LocationArn": x.LocationArn, "LocationUri": x.location_uri} for x in page]
        return _listed("Locations", entries, token)

    async def delete_location(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        await self._update("delete_location", req.LocationArn)
        return {}

    # --- tasks ---------------------------------------------------------------------------------

    async def create_task(self, request: dict[str, Any]) -> Response:
        req = parse(CreateTaskRequest, request)
        try:
            options = resolve_options(req.Options)
            check_filters(req.Includes, "Includes", include=True)
            check_filters(req.Excludes, "Excludes", include=False)
        except ValueError as error:
            raise InvalidRequestException(str(error)) from None
        schedule = req.Schedule if req.Schedule and req.Schedule.ScheduleExpression else None
        arn = f"{arn_prefix(self.region, self.account)}task/{new_id('task')}"
        task = Task(
            TaskArn=arn,
            Name=req.Name,
            SourceLocationArn=req.SourceLocationArn,
            DestinationLocationArn=req.DestinationLocationArn,
            Options=options,
            Includes=req.Includes,
            Excludes=req.Excludes,
            CreationTime=_now(),
            CloudWatchLogGroupArn=req.CloudWatchLogGroupArn,
            Schedule=schedule,
            BandwidthTimetable=req.BandwidthTimetable,
            TaskReportConfig=req.TaskReportConfig,
            ManifestConfig=req.ManifestConfig,
        )
        await self._update("create_task", task, req.Tags)
        return {"TaskArn": arn}

    async def describe_task(self, request: dict[str, Any]) -> Response:
        req = parse(TaskArnRequest, request)
        task = await self._task(req.TaskArn)
        executions = await self._query("executions", ExecutionQueue)
        return task.describe(*executions.of_task(task.TaskArn))

    async def list_tasks(self, request: dict[str, Any]) -> Response:
        req = parse(ListTasksRequest, request)
        tasks = await self._query("tasks", list[Task])
        executions = await self._query("executions", ExecutionQueue)
        chosen = [
            task
            for task in sorted(tasks, key=lambda x: (x.CreationTime, x.TaskArn))
            if all(_matches(_task_field(task, f.Name), f.Operator, f.Values) for f in req.Filters)
        ]
        page, token = _page(chosen, lambda x: x.TaskArn, req.MaxResults, req.NextToken)
        entries = []
        for task in page:
            entry = {
                "TaskArn": task.TaskArn,
                "Status": executions.of_task(task.TaskArn)[1],
                "TaskMode": "BASIC",
            }
            if task.Name:
                entry["Name"] = task.Name
            entries.append(entry)
        return _listed("Tasks", entries, token)

    async def update_task(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateTaskRequest, request)
        self._check_filters(req.Includes, req.Excludes)
        update = TaskUpdate(
            TaskArn=req.TaskArn,
            Name=req.Name,
            CloudWatchLogGroupArn=req.CloudWatchLogGroupArn,
            Options=req.Options,
            Includes=req.Includes,
            Excludes=req.Excludes,
            Schedule=req.Schedule,
            BandwidthTimetable=req.BandwidthTimetable,
            TaskReportConfig=req.TaskReportConfig,
            ManifestConfig=req.ManifestConfig,
        )
        await self._update("update_task", update)
        return {}

    async def delete_task(self, request: dict[str, Any]) -> Response:
        req = parse(TaskArnRequest, request)
        await self._update("delete_task", req.TaskArn)
        return {}

    # --- executions ----------------------------------------------------------------------------

    async def start_task_execution(self, request: dict[str, Any]) -> Response:
        req = parse(StartTaskExecutionRequest, request)
        self._check_filters(req.Includes, req.Excludes)
        arn = f"{req.TaskArn}/execution/{new_id('exec')}"
        start = ExecutionStart(
            TaskArn=req.TaskArn,
            TaskExecutionArn=arn,
            OverrideOptions=req.OverrideOptions,
            Includes=req.Includes,
            Excludes=req.Excludes,
            Tags=req.Tags,
            DryRun=bool(req.DryRun),
            TaskReportConfig=req.TaskReportConfig,
            ManifestConfig=req.ManifestConfig,
        )
        await self._update("start_task_execution", start)
        return {"TaskExecutionArn": arn}

    async def describe_task_execution(self, request: dict[str, Any]) -> Response:
        req = parse(TaskExecutionArnRequest, request)
        info = await self._execution(req.TaskExecutionArn)
        description: Response | None = None
        if info.status == WorkflowExecutionStatus.RUNNING:
            handle = self.client.get_workflow_handle(info.id)
            try:
                description = await handle.query("describe", rpc_timeout=QUERY_TIMEOUT)
                # Batches in flight, from their heartbeats: asked after the query, so that a
                # batch that ends in between is not counted twice.
                description = _add(description, await self._in_flight(await handle.describe()))
            except RPCError:
                description = None  # no worker answers now: the last phase change will do
        if description is None:
            description = (await info.memo()).get(DESCRIPTION_MEMO) or {}
        description = _with_times(description)
        if info.status not in (WorkflowExecutionStatus.RUNNING, None) and (
            description.get("Status") not in TERMINAL
        ):
            # Ended without finishing its phases: terminated or timed out from outside Ferry.
            description["Status"] = "ERROR"
            result = description.setdefault("Result", {})
            result["ErrorCode"] = ErrorCode.TERMINATED
            result["ErrorDetail"] = f"The execution's workflow was {info.status.name.lower()}."
            if info.close_time:
                description["EndTime"] = info.close_time
        return description

    async def list_task_executions(self, request: dict[str, Any]) -> Response:
        req = parse(ListTaskExecutionsRequest, request)
        query = f"WorkflowType = '{EXECUTION_WORKFLOW}'"
        if req.TaskArn:
            query += f" AND {TASK_ARN.name} = '{req.TaskArn}'"
        token = base64.urlsafe_b64decode(req.NextToken) if req.NextToken else None
        iterator = self.client.list_workflows(
            query, page_size=req.MaxResults or 100, next_page_token=token
        )
        entries = []
        try:
            await iterator.fetch_next_page()
        except RPCError as error:
            raise _unreachable(self.client, error) from None
        for workflow in iterator.current_page or []:
            task_arn = workflow.typed_search_attributes.get(TASK_ARN)
            status = workflow.typed_search_attributes.get(EXECUTION_STATUS) or "QUEUED"
            if workflow.status != WorkflowExecutionStatus.RUNNING and status not in TERMINAL:
                status = "ERROR"
            entries.append(
                {
                    "TaskExecutionArn": f"{task_arn}/execution/{workflow.id}",
                    "Status": status,
                    "TaskMode": "BASIC",
                }
            )
        response: Response = {"TaskExecutions": entries}
        if iterator.next_page_token:
            response["NextToken"] = base64.urlsafe_b64encode(iterator.next_page_token).decode()
        return response

    async def cancel_task_execution(self, request: dict[str, Any]) -> Response:
        req = parse(TaskExecutionArnRequest, request)
        description = await self.describe_task_execution(request)
        if description.get("Status") in TERMINAL:
            raise InvalidRequestException(
                f"Task execution {req.TaskExecutionArn} has already ended "
                f"({description.get('Status')})."
            )
        await self.client.get_workflow_handle(execution_id(req.TaskExecutionArn)).cancel()
        return {}

    async def update_task_execution(self, request: dict[str, Any]) -> Response:
        """A new bandwidth limit for a running execution, in force within seconds."""
        req = parse(UpdateTaskExecutionRequest, request)
        info = await self._execution(req.TaskExecutionArn)
        if info.status != WorkflowExecutionStatus.RUNNING:
            raise InvalidRequestException(
                f"Task execution {req.TaskExecutionArn} is no longer running."
            )
        handle = self.client.get_workflow_handle(info.id)
        try:
            await handle.execute_update("update_options", req.Options)
        except WorkflowUpdateFailedError as error:
            raise _api_error(error.cause) from None
        except RPCError as error:
            raise _unreachable(self.client, error) from None
        return {}

    # --- tags ----------------------------------------------------------------------------------

    async def tag_resource(self, request: dict[str, Any]) -> Response:
        req = parse(TagResourceRequest, request)
        await self._update("tag_resource", Tagging(ResourceArn=req.ResourceArn, Tags=req.Tags))
        return {}

    async def untag_resource(self, request: dict[str, Any]) -> Response:
        req = parse(UntagResourceRequest, request)
        await self._update("tag_resource", Tagging(ResourceArn=req.ResourceArn, Keys=req.Keys))
        return {}

    async def list_tags_for_resource(self, request: dict[str, Any]) -> Response:
        req = parse(ListTagsForResourceRequest, request)
        tags = await self._tags(req.ResourceArn)
        page, token = _page(tags, lambda tag: tag.Key, req.MaxResults, req.NextToken)
        return _listed("Tags", [tag.shown() for tag in page], token)

    async def _tags(self, arn: str) -> list[TagListEntry]:
        if "/execution/" in arn:
            memo = await (await self._execution(arn)).memo()
            return [TagListEntry(**tag) for tag in memo.get(TAGS_MEMO, [])]
        if TASK_ARN_PATTERN.match(arn):
            await self._task(arn)
        elif AGENT_ARN.match(arn):
            await self._agent(arn)
        else:
            await self._location(arn)
        return await self._query("tags", list[TagListEntry], arn)

    # --- plumbing ------------------------------------------------------------------------------

    async def _execution(self, arn: str) -> WorkflowExecutionDescription:
        """The execution's workflow, checked to belong to the task its ARN names."""
        if not TASK_EXECUTION_ARN.match(arn):
            raise _no_execution(arn)
        try:
            info = await self.client.get_workflow_handle(execution_id(arn)).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise _no_execution(arn) from None
            raise _unreachable(self.client, error) from None
        if info.typed_search_attributes.get(TASK_ARN) != task_arn_of(arn):
            raise _no_execution(arn)
        return info

    def _check_filters(self, includes: Any, excludes: Any) -> None:
        try:
            check_filters(includes or [], "Includes", include=True)
            check_filters(excludes or [], "Excludes", include=False)
        except ValueError as error:
            raise InvalidRequestException(str(error)) from None

    async def _agent(self, arn: str) -> Agent:
        for agent in await self._query("agents", list[Agent]):
            if agent.AgentArn == arn:
                return agent
        raise InvalidRequestException(f"AgentArn: agent {arn} does not exist.")

    async def _location(self, arn: str, kind: type[L] = LocationBase) -> L:  # type: ignore[assignment]
        for location in await self._query("locations", list[Location]):
            if location.LocationArn == arn:
                if not isinstance(location, kind):
                    raise InvalidRequestException(
                        f"LocationArn: location {arn} is not {_KIND_NAMES[kind]} location "
                        f"but {location.location_uri}."
                    )
                return location
        raise InvalidRequestException(f"LocationArn: location {arn} does not exist.")

    async def _task(self, arn: str) -> Task:
        for task in await self._query("tasks", list[Task]):
            if task.TaskArn == arn:
                return task
        raise InvalidRequestException(f"TaskArn: task {arn} does not exist.")

    async def _update(self, update: str, *args: Any) -> Any:
        """An Update on the registry, which is started by the first one."""
        await self._require_worker()
        start = WithStartWorkflowOperation(
            REGISTRY_WORKFLOW,
            None,
            id=REGISTRY_WORKFLOW_ID,
            task_queue=TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            return await self.client.execute_update_with_start_workflow(
                update, args=args, start_workflow_operation=start
            )
        except WorkflowUpdateFailedError as error:
            raise _api_error(error.cause) from None
        except RPCError as error:
            raise _unreachable(self.client, error) from None

    async def _query(self, query: str, result_type: type[T], *args: Any) -> T:
        """A Query on the registry; what it holds when nothing was ever created is empty."""
        handle = self.client.get_workflow_handle(REGISTRY_WORKFLOW_ID)
        try:
            return await handle.query(
                query, args=args, result_type=result_type, rpc_timeout=QUERY_TIMEOUT
            )
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return result_type()  # type: ignore[call-arg]
            await self._require_worker()
            raise _unreachable(self.client, error) from None

    async def _require_worker(self, patience: float = 5.0) -> None:
        """Fail fast, and say why, when no worker would take the request (allowing one that
        is just starting a few seconds to poll)."""
        if self._worker_seen:
            return
        deadline = asyncio.get_running_loop().time() + patience
        while True:
            try:
                seen = await last_poll(
                    self.client, TASK_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
                )
            except RPCError as error:
                raise _unreachable(self.client, error) from None
            if seen is not None:
                self._worker_seen = True
                return
            if asyncio.get_running_loop().time() > deadline:
                raise InternalException(
                    f"No Ferry worker is polling task queue {TASK_QUEUE!r} on "
                    f"{self.client.service_client.config.target_host}: start `ferry dev` (the "
                    "embedded stack) or `ferry worker`."
                )
            await asyncio.sleep(0.1)

    async def _in_flight(self, info: WorkflowExecutionDescription) -> Counters:
        """Progress of the batches running now, from their heartbeats."""
        total = Counters()
        for pending in info.raw_description.pending_activities:
            if not pending.heartbeat_details.payloads:
                continue
            details = await self.client.data_converter.decode(pending.heartbeat_details.payloads)
            checkpoint = details[0] if details and isinstance(details[0], dict) else {}
            counters = Counters(**checkpoint.get("counters", {}))
            partial = checkpoint.get("partial_bytes", 0)
            counters.BytesTransferred += partial
            counters.BytesWritten += partial
            total.add(counters)
        return total


def method_name(operation: str) -> str:
    """`CreateTask` -> `create_task`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _version() -> str:
    try:
        return importlib.metadata.version("ferry")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown"


_KIND_NAMES: dict[type, str] = {
    LocalLocation: "a local",
    S3Location: "an S3",
    ObjectStorageLocation: "an object storage",
    NfsLocation: "an NFS",
    SmbLocation: "an SMB",
    EfsLocation: "an EFS",
    FsxWindowsLocation: "an FSx for Windows File Server",
    FsxOpenZfsLocation: "an FSx for OpenZFS",
    FsxLustreLocation: "an FSx for Lustre",
    HdfsLocation: "an HDFS",
}


def _sealed(secret: str | None, location_arn: str, field: str = "SecretKey") -> str | None:
    if secret is None:
        return None
    use_key_file(data_dir(), make=True)  # unless given one: the default data directory's
    try:
        return seal(secret, location_arn)
    except SecretError as error:
        raise InvalidRequestException(f"{field}: {error}") from None


def _changes(request: Request, exclude: set[str] | frozenset[str] = frozenset()) -> Response:
    """A request's given fields as a location model takes them: nested shapes as models, lists
    as tuples."""
    changes: Response = {}
    for name in type(request).model_fields:
        value = getattr(request, name)
        if name in exclude or name == "LocationArn" or value is None:
            continue
        if isinstance(value, NfsMountOptionsShape):
            value = NfsMountOptions(**value.model_dump())
        elif isinstance(value, SmbMountOptionsShape):
            value = SmbMountOptions(**value.model_dump())
        elif isinstance(value, Ec2ConfigShape):
            value = Ec2Settings(
                SubnetArn=value.SubnetArn, SecurityGroupArns=tuple(value.SecurityGroupArns)
            )
        elif isinstance(value, list):
            value = tuple(
                HdfsNameNode(**item.model_dump()) if isinstance(item, HdfsNameNodeShape) else item
                for item in value
            )
        changes[name] = value
    return changes


def _smb_secrets(
    request: CreateLocationSmbRequest | UpdateLocationSmbRequest, location_arn: str
) -> Response:
    secrets: Response = {}
    for field in ("Password", "KerberosKeytab"):
        if (value := getattr(request, field)) is not None:
            secrets[field] = _sealed(value, location_arn, field)
    return secrets


# What each AuthenticationType needs, the first being the default.
_SMB_AUTHENTICATION = {
    "NTLM": ("User", "Password"),
    "KERBEROS": ("KerberosPrincipal", "KerberosKeytab", "KerberosKrb5Conf"),
}
_HDFS_AUTHENTICATION = {
    "SIMPLE": ("SimpleUser",),
    "KERBEROS": ("KerberosPrincipal", "KerberosKeytab", "KerberosKrb5Conf"),
}


def _check_authentication(
    fields: Response, needs: dict[str, tuple[str, ...]], *, updating: bool = False
) -> None:
    """DataSync's rule: each AuthenticationType has fields it cannot go without."""
    kind = fields.get("AuthenticationType", next(iter(needs)))
    needed = needs[kind]
    missing = [field for field in needed if not fields.get(field)]
    if missing:
        listed = f"{', '.join(needed[:-1])} and {needed[-1]}" if len(needed) > 1 else needed[0]
        raise InvalidRequestException(
            f"AuthenticationType {kind} requires {listed}: give "
            f"{', '.join(missing)}" + (" (or change AuthenticationType)." if updating else ".")
        )


def _qop(given: QopConfigurationShape | None) -> HdfsQop:
    """DataSync's defaults: PRIVACY for both, or the one given for the other."""
    rpc = given and given.RpcProtection
    transfer = given and given.DataTransferProtection
    return HdfsQop(
        RpcProtection=rpc or transfer or "PRIVACY",
        DataTransferProtection=transfer or rpc or "PRIVACY",
    )


def _check_efs_tunnel(fields: Response) -> None:
    """TLS and access points go through EFS's TLS tunnel (efs-proxy, or stunnel with the access
    point), which Ferry does not run: without an address for one, they would be ignored."""
    wanted = [
        name
        for name, given in (
            ("InTransitEncryption=TLS1_2", fields.get("InTransitEncryption") == "TLS1_2"),
            ("AccessPointArn", bool(fields.get("AccessPointArn"))),
        )
        if given
    ]
    if wanted and not fields.get("ServerHostname"):
        raise InvalidRequestException(
            f"{' and '.join(wanted)} need EFS's TLS tunnel, which Ferry does not run: run "
            "efs-proxy (or stunnel) beside the agent and give its address as ServerHostname "
            "and ServerPort."
        )


def _efs_hostname(arn: str) -> str:
    """The DNS name AWS gives an EFS file system (resolvable inside its VPC)."""
    region, file_system = aws_file_system(arn)
    return f"{file_system}.efs.{region}.amazonaws.com"


def _fsx_hostname(arn: str) -> str:
    """The DNS name AWS gives an FSx file system (Lustre and OpenZFS; a Windows file system's
    is in its Active Directory domain, so give ServerHostname for it)."""
    region, file_system = aws_file_system(arn)
    return f"{file_system}.fsx.{region}.amazonaws.com"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _api_error(cause: BaseException | None) -> DataSyncError:
    if isinstance(cause, ApplicationError) and cause.type == INVALID_REQUEST:
        return InvalidRequestException(cause.message)
    return InternalException(str(cause) if cause else "the request failed")


def _unreachable(client: Client, error: RPCError) -> InternalException:
    return InternalException(
        f"Temporal at {client.service_client.config.target_host} did not answer "
        f"({error.status.name if error.status else 'error'}: {error.message})."
    )


def _no_execution(arn: str) -> InvalidRequestException:
    return InvalidRequestException(f"TaskExecutionArn: task execution {arn} does not exist.")


_LIVE_COUNTERS = (
    "FilesTransferred",
    "BytesWritten",
    "BytesTransferred",
    "FilesDeleted",
    "FilesSkipped",
    "FilesVerified",
)


def _add(description: Response, in_flight: Counters) -> Response:
    for field in _LIVE_COUNTERS:
        description[field] = description.get(field, 0) + getattr(in_flight, field)
    description["BytesCompressed"] = description["BytesTransferred"]
    return description


def _with_times(description: Response) -> Response:
    for field in _TIME_FIELDS:
        value = description.get(field)
        if isinstance(value, str):
            description[field] = datetime.fromisoformat(value)
    return description


def _listed(field: str, entries: list[Any], token: str | None) -> Response:
    """A List* response: the page's entries, and NextToken when there are more."""
    response: Response = {field: entries}
    if token:
        response["NextToken"] = token
    return response


def _page(
    items: list[T], key: Callable[[T], str], max_results: int | None, token: str | None
) -> tuple[list[T], str | None]:
    if token:
        after = base64.urlsafe_b64decode(token.encode()).decode()
        items = _after(items, key, after)
    size = max_results or 100
    page = items[:size]
    more = len(items) > size
    return page, base64.urlsafe_b64encode(key(page[-1]).encode()).decode() if more else None


def _after(items: list[T], key: Callable[[T], str], after: str) -> list[T]:
    for position, item in enumerate(items):
        if key(item) == after:
            return items[position + 1 :]
    return []


def _location_field(location: Location, name: str) -> str:
    if name == "LocationUri":
        return location.location_uri
    if name == "LocationType":
        return location.LocationType
    return location.CreationTime.isoformat()


def _task_field(task: Task, name: str) -> Any:
    if name == "LocationId":
        return [task.SourceLocationArn, task.DestinationLocationArn]
    return task.CreationTime.isoformat()


def _matches(actual: Any, operator: str, values: list[str]) -> bool:
    """DataSync's list filters; LocationId matches a task by either of its locations."""
    candidates = actual if isinstance(actual, list) else [actual]
    tests: dict[str, Callable[[str, str], bool]] = {
        "Equals": lambda a, v: a == v,
        "In": lambda a, v: a == v,
        "LessThan": lambda a, v: a < v,
        "LessThanOrEqual": lambda a, v: a <= v,
        "GreaterThan": lambda a, v: a > v,
        "GreaterThanOrEqual": lambda a, v: a >= v,
        "Contains": lambda a, v: v in a,
        "BeginsWith": lambda a, v: a.startswith(v),
    }
    if operator in ("NotEquals", "NotContains"):
        positive = tests["Equals" if operator == "NotEquals" else "Contains"]
        return not any(positive(a, v) for a in candidates for v in values)
    return any(tests[operator](a, v) for a in candidates for v in values)
