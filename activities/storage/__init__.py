"""Storage adapters, one module per protocol family, behind the interface in `base`.

Which adapter opens a location, and what its storage can hold, is the location type's
declaration (models.locations): its `adapter` names the module whose `open_location` opens it
(here, for Ferry's own types), its model's `capabilities` what the storage keeps. (A type
declared outside Ferry is imported while models.locations is built, and may import
activities.storage.base: so nothing here takes names from models.locations at import.)
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING

import models.locations as locations
from activities.storage.base import MetadataPolicy, Storage
from models.options import Options

if TYPE_CHECKING:
    from models.locations import Location


def open_storage(location: Location, temp_tag: str = "") -> Storage:
    """The storage of a location. `temp_tag` names this execution's temporary files.

    Protocol clients are imported only by the workers that reach such a location.
    """
    adapter = importlib.import_module(locations.KIND_OF[location.LocationType].adapter)
    storage: Storage = adapter.open_location(location, temp_tag)
    return storage


def time_resolution_ns(*locations: Location) -> int:
    """The coarsest mtime resolution among `locations`: times closer than this are equal."""
    return max(location.capabilities.time_resolution_ns for location in locations)


def files_in_flight(*locations: Location) -> int:
    """Files a batch works on at once: one where a file costs little more than its bytes
    (local disks, CPU-bound), several where each costs round trips to a server."""
    return max(location.capabilities.files_in_flight for location in locations)


def carries_attributes(source: Location, destination: Location) -> bool:
    """Whether a folder's or a metadata-only entry's `Storage.attributes` are worth reading from
    the source: SMB's, between SMB shares (files carry theirs through the reader anyway)."""
    return source.capabilities.windows_metadata and destination.capabilities.windows_metadata


def metadata_policy(options: Options, destination: Location | None) -> MetadataPolicy:
    """What a transfer to `destination` writes and compares: what the task's options keep, of
    what the destination can hold. (A source without POSIX metadata gives its entries
    DataSync's defaults, NO_POSIX_ID and the like.)"""
    policy = MetadataPolicy.from_options(options)
    if destination is None:
        return policy
    can = destination.capabilities
    if can.owner_names:
        policy = dataclasses.replace(policy, owner_name=policy.uid, group_name=policy.gid)
    return dataclasses.replace(
        policy,
        atime=policy.atime and can.access_times,
        uid=policy.uid and can.posix_owners,
        gid=policy.gid and can.posix_owners,
        mode=policy.mode and can.posix_modes,
        devices=policy.devices and can.devices,
        link_times=can.link_times,
        mode_bits=can.mode_bits,
    )
