"""Storage adapters, one module per protocol family, behind the interface in `base`."""

from __future__ import annotations

from activities.storage.base import Storage
from activities.storage.local import LocalStorage
from models.locations import LocalLocation, Location


def open_storage(location: Location, temp_tag: str = "") -> Storage:
    """The storage of a location. `temp_tag` names this execution's temporary files."""
    if isinstance(location, LocalLocation):
        return LocalStorage(location.Path, temp_tag)
    # boto3 takes a third of a second to import: only workers that reach object storage pay it.
    from activities.storage.objects import ObjectStorage

    return ObjectStorage(location, temp_tag)


# The mtime resolution each location type keeps, to compare times without opening a storage
# (Ferry writes object storage mtimes in nanoseconds, in user metadata).
_TIME_RESOLUTION_NS = {"LOCAL": 1, "S3": 1, "OBJECT_STORAGE": 1}


def time_resolution_ns(*locations: Location) -> int:
    """The coarsest mtime resolution among `locations`: times closer than this are equal."""
    return max(_TIME_RESOLUTION_NS[location.LocationType] for location in locations)
