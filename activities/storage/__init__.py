"""Storage adapters, one module per protocol family, behind the interface in `base`."""

from __future__ import annotations

from activities.storage.base import Storage
from activities.storage.local import LocalStorage
from models.locations import Location


def open_storage(location: Location, temp_tag: str = "") -> Storage:
    """The storage of a location. `temp_tag` names this execution's temporary files."""
    return LocalStorage(location.Path, temp_tag)
