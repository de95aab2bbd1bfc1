"""Locations as Ferry stores them. One model per location type; `Location` is their union."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class LocationBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    LocationArn: str
    CreationTime: datetime
    # The agents that reach this storage; none: the ordinary workers reach it. (A tuple: a
    # location is hashable.)
    AgentArns: tuple[str, ...] = ()

    @property
    def location_uri(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The Describe* response; never contains a secret."""
        response: dict[str, Any] = {
            "LocationArn": self.LocationArn,
            "LocationUri": self.location_uri,
            "CreationTime": self.CreationTime,
        }
        if self.AgentArns:
            response["AgentArns"] = list(self.AgentArns)
        return response


class LocalLocation(LocationBase):
    """Beyond DataSync: a directory that the worker sees in its own file system."""

    LocationType: Literal["LOCAL"] = "LOCAL"
    Path: str

    @property
    def location_uri(self) -> str:
        return "local://" + self.Path.rstrip("/") + "/"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "Path": self.Path}


# A discriminated union on LocationType once a second location type exists.
Location = LocalLocation
