"""DataSync's tag operations, on agents, locations, tasks and executions."""

from __future__ import annotations

from typing import Any

from api.base import Operations, Response, listed, paginate
from api.requests import (
    ListTagsForResourceRequest,
    TagResourceRequest,
    UntagResourceRequest,
    parse,
)
from models.arn import AGENT_ARN
from models.arn import TASK_ARN as TASK_ARN_PATTERN
from models.registry import Tagging
from models.tags import TagListEntry


class TagOperations(Operations):
    async def tag_resource(self, request: dict[str, Any]) -> Response:
        req = parse(TagResourceRequest, request)
        await self._found(req.ResourceArn)
        await self._update("tag_resource", Tagging(ResourceArn=req.ResourceArn, Tags=req.Tags))
        return {}

    async def untag_resource(self, request: dict[str, Any]) -> Response:
        req = parse(UntagResourceRequest, request)
        await self._found(req.ResourceArn)
        await self._update("tag_resource", Tagging(ResourceArn=req.ResourceArn, Keys=req.Keys))
        return {}

    async def list_tags_for_resource(self, request: dict[str, Any]) -> Response:
        req = parse(ListTagsForResourceRequest, request)
        tags = await self._tags(req.ResourceArn)
        page, token = paginate(tags, lambda tag: (tag.Key,), req.MaxResults, req.NextToken)
        return listed("Tags", [tag.shown() for tag in page], token)

    async def _tags(self, arn: str) -> list[TagListEntry]:
        await self._found(arn)
        return await self._query("tags", list[TagListEntry], arn)

    async def _found(self, arn: str) -> None:
        """Raises DataSync's "not found" ("does not exist" for an agent) unless `arn` is."""
        if "/execution/" in arn:
            await self._execution(arn)
        elif TASK_ARN_PATTERN.match(arn):
            await self._task(arn)
        elif AGENT_ARN.match(arn):
            await self._agent(arn)
        else:
            await self._location(arn)
