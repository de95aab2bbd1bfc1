"""Storage adapters, one module per protocol family, behind the interface in `base`."""

from __future__ import annotations

from activities.storage.base import Storage
from activities.storage.local import LocalStorage
from models.locations import LocalLocation, Location


def open_storage(location: Location, temp_tag: str = "") -> Storage:
    """The storage of a location. `temp_tag` names this execution's temporary files."""
    if isinstance(location, LocalLocation):
        return LocalStorage(location.Path, temp_tag)
    # Only workers that reach object storage load its client (urllib3, botocore's credentials).
    from activities.storage.objects import ObjectStorage

    return ObjectStorage(location, temp_tag)


# The mtime resolution each location type keeps, to compare times without opening a storage
# (Ferry writes object storage mtimes in nanoseconds, in user metadata).
_TIME_RESOLUTION_NS = {"LOCAL": 1, "S3": 1, "OBJECT_STORAGE": 1}


def time_resolution_ns(*locations: Location) -> int:
    """The coarsest mtime resolution among `locations`: times closer than this are equal."""
    return max(_TIME_RESOLUTION_NS[location.LocationType] for location in locations)


# Files a batch works on at once: one where a file costs little more than its bytes (local
# disks, CPU-bound), several where each costs a round trip to a server (a PUT, a GET).
_FILES_IN_FLIGHT = {"LOCAL": 1, "S3": 8, "OBJECT_STORAGE": 8}


def files_in_flight(*locations: Location) -> int:
    return max(_FILES_IN_FLIGHT[location.LocationType] for location in locations)
