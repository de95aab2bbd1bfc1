"""DataSync's location operations: CreateLocation<Type>, DescribeLocation<Type> and
UpdateLocation<Type> for every location type models/locations/ declares, made from its
declaration, and ListLocations and DeleteLocation. Secrets (SecretKey, Password, KerberosKeytab)
are sealed before they reach Temporal and never shown."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from api.base import Operations, Response, listed, matches, now, paginate
from api.requests import ListLocationsRequest, LocationArnRequest, parse
from api.secrets import SecretError, seal
from models.arn import arn_prefix, new_id
from models.errors import InvalidRequestException
from models.locations import KINDS, Location, LocationKind
from models.requests import explain


class LocationOperations(Operations):
    async def create_location(self, kind: LocationKind, request: dict[str, Any]) -> Response:
        req = parse(kind.create, request)
        arn = f"{arn_prefix(self.region, self.account)}location/{new_id('loc')}"
        fields = kind.prepare(req.model_dump(exclude_none=True, exclude={"Tags"}), False)
        kind.check(fields, False)
        for name in kind.secrets:
            if name in fields:
                fields[name] = _sealed(fields[name], arn, name)
        location = _model(kind, {**fields, "LocationArn": arn, "CreationTime": now()})
        await self._update("create_location", location, req.Tags)
        return {"LocationArn": arn}

    async def describe_location(self, kind: LocationKind, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        return (await self._location(req.LocationArn, kind.model)).describe()

    async def update_location(self, kind: LocationKind, request: dict[str, Any]) -> Response:
        assert kind.update is not None
        req = parse(kind.update, request)
        location = await self._location(req.LocationArn, kind.model)
        changes = kind.prepare(req.model_dump(exclude_none=True, exclude={"LocationArn"}), True)
        fields = {**location.model_dump(), **changes}
        kind.check(fields, True)
        for name in kind.secrets:
            if name in changes:
                fields[name] = _sealed(changes[name], location.LocationArn, name)
        await self._update("update_location", _model(kind, fields))
        return {}

    async def list_locations(self, request: dict[str, Any]) -> Response:
        req = parse(ListLocationsRequest, request)
        locations = await self._query("locations", list[Location])
        chosen = [
            location
            for location in locations
            if all(
                matches(_location_field(location, f.Name), f.Operator, f.Values)
                for f in req.Filters
            )
        ]
        page, token = paginate(
            chosen,
            lambda x: (x.CreationTime.isoformat(), x.LocationArn),
            req.MaxResults,
            req.NextToken,
        )
        entries = [{"LocationArn": x.LocationArn, "LocationUri": x.location_uri} for x in page]
        return listed("Locations", entries, token)

    async def delete_location(self, request: dict[str, Any]) -> Response:
        req = parse(LocationArnRequest, request)
        await self._update("delete_location", req.LocationArn)
        return {}


def _operation(
    method: Callable[[LocationOperations, LocationKind, dict[str, Any]], Awaitable[Response]],
    kind: LocationKind,
) -> Callable[[LocationOperations, dict[str, Any]], Awaitable[Response]]:
    @functools.wraps(method)
    async def operation(self: LocationOperations, request: dict[str, Any]) -> Response:
        return await method(self, kind, request)

    return operation


# create_location_smb, describe_location_smb, update_location_smb, ...: one of each per type.
for _kind in KINDS:
    _suffix = re.sub(r"(?<!^)(?=[A-Z])", "_", _kind.name).lower()
    setattr(
        LocationOperations,
        f"create_location_{_suffix}",
        _operation(LocationOperations.create_location, _kind),
    )
    setattr(
        LocationOperations,
        f"describe_location_{_suffix}",
        _operation(LocationOperations.describe_location, _kind),
    )
    if _kind.update is not None:
        setattr(
            LocationOperations,
            f"update_location_{_suffix}",
            _operation(LocationOperations.update_location, _kind),
        )


def _model(kind: LocationKind, fields: dict[str, Any]) -> Location:
    """The location as the registry keeps it; nested shapes become its models."""
    try:
        return kind.model.model_validate(fields)  # type: ignore[return-value]
    except ValidationError as error:
        raise InvalidRequestException(explain(error, kind.model)) from None


def _sealed(secret: str, location_arn: str, field: str) -> str:
    try:
        return seal(secret, location_arn)
    except SecretError as error:
        raise InvalidRequestException(f"{field}: {error}") from None


def _location_field(location: Location, name: str) -> str:
    if name == "LocationUri":
        return location.location_uri
    if name == "LocationType":
        return location.LocationType
    return location.CreationTime.isoformat()
