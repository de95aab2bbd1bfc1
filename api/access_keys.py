"""The access keys that may call the DataSync endpoint, managed as IAM's access keys are: the
CLI's create-access-key, list-access-keys, update-access-key and delete-access-key."""

from __future__ import annotations

from typing import Any

from api.base import Operations, Response, now
from api.requests import (
    AccessKeyIdRequest,
    CreateAccessKeyRequest,
    ListAccessKeysRequest,
    UpdateAccessKeyRequest,
    parse,
)
from api.secrets import seal
from models.access_keys import AccessKey, new_access_key, sealed_as
from models.registry import AccessKeyUpdate


class AccessKeyOperations(Operations):
    async def create_access_key(self, request: dict[str, Any]) -> Response:
        """IAM's CreateAccessKey: the only answer that shows the secret."""
        req = parse(CreateAccessKeyRequest, request)
        key_id, secret = new_access_key()
        key = AccessKey(
            AccessKeyId=key_id,
            SecretAccessKey=seal(secret, sealed_as(key_id)),
            UserName=req.UserName,
            CreateDate=now(),
        )
        await self._update("create_access_key", key)
        return {"AccessKey": {**key.shown(), "SecretAccessKey": secret}}

    async def list_access_keys(self, request: dict[str, Any]) -> Response:
        parse(ListAccessKeysRequest, request)
        keys = sorted(await self.access_keys(), key=lambda k: (k.CreateDate, k.AccessKeyId))
        return {"AccessKeyMetadata": [key.shown() for key in keys], "IsTruncated": False}

    async def update_access_key(self, request: dict[str, Any]) -> Response:
        req = parse(UpdateAccessKeyRequest, request)
        await self._update("update_access_key", AccessKeyUpdate(**req.model_dump()))
        return {}

    async def delete_access_key(self, request: dict[str, Any]) -> Response:
        req = parse(AccessKeyIdRequest, request)
        await self._update("delete_access_key", req.AccessKeyId)
        return {}

    async def access_keys(self) -> list[AccessKey]:
        """Every access key, secrets sealed: what the endpoint checks signatures against."""
        return await self._query("access_keys", list[AccessKey])
