"""Agents: worker processes near self-managed storage, bound to Ferry by an activation key as
DataSync's agents are."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

# DataSync's format: five groups of five letters and digits.
ACTIVATION_KEY = re.compile(r"^[A-Z0-9]{5}(-[A-Z0-9]{5}){4}$")
_KEY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
# How long a key waits for CreateAgent (DataSync: 30 minutes).
ACTIVATION_KEY_SECONDS = 30 * 60


def new_activation_key() -> str:
    return "-".join("".join(secrets.choice(_KEY_ALPHABET) for _ in range(5)) for _ in range(5))


class Activation(BaseModel):
    """A key an agent process made and is waiting with; AgentArn once CreateAgent used it."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    ActivationKey: str
    ExpiresAt: datetime
    AgentArn: str | None = None


class Agent(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    AgentArn: str
    Name: str | None = None
    CreationTime: datetime

    def describe(
        self, status: str, last_connection: datetime | None, version: str
    ) -> dict[str, Any]:
        response: dict[str, Any] = {
            "AgentArn": self.AgentArn,
            "Status": status,
            "CreationTime": self.CreationTime,
            "EndpointType": "PUBLIC",
            "Platform": {"Version": version},
        }
        if self.Name is not None:
            response["Name"] = self.Name
        if last_connection is not None:
            response["LastConnectionTime"] = last_connection
        return response
