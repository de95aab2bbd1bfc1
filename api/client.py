"""Connecting to Temporal the way Temporal's own tools do (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TLS settings and profiles), with the payload converter Ferry's models need."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig

from models.errors import InternalException
from models.temporal import SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "localhost:7233"


async def connect(address: str | None = None, patience: float = 0.0, **options: Any) -> Client:
    """A client; with `patience`, keep trying that many seconds (a server that is starting);
    `options` for `Client.connect` (a worker's telemetry)."""
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if address:
        config["target_host"] = address
    deadline = time.monotonic() + patience
    while True:
        try:
            return await Client.connect(**config, data_converter=pydantic_data_converter, **options)
        except RuntimeError as error:
            if time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                continue
            raise InternalException(
                f"Cannot reach Temporal at {config['target_host']} ({error}). Start the "
                "embedded stack with `ferry dev`, or point TEMPORAL_ADDRESS at your cluster."
            ) from None


async def ensure_search_attributes(client: Client) -> None:
    """Register Ferry's search attributes on a cluster that lacks them (the dev server gets them
    at start); without the permission to, say how an operator can."""
    namespace = client.namespace
    present = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in SEARCH_ATTRIBUTES
        if key.name not in present.custom_attributes
    }
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    except Exception as error:
        commands = "; ".join(
            f"temporal operator search-attribute create --name {name} --type Keyword"
            for name in missing
        )
        log.warning("could not register search attributes (%s); run: %s", error, commands)
