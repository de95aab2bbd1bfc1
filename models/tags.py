"""Resource tags, as DataSync takes them on locations, tasks and executions."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_TAGS = 50


class TagListEntry(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    Key: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[a-zA-Z0-9\s+=._:/-]+$")]
    Value: Annotated[str, Field(max_length=256, pattern=r"^[a-zA-Z0-9\s+=._:@/-]*$")] | None = None

    def shown(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


def merged(tags: list[TagListEntry], new: list[TagListEntry]) -> list[TagListEntry]:
    """TagResource: new keys added, existing keys given new values."""
    by_key = {tag.Key: tag for tag in tags}
    by_key.update({tag.Key: tag for tag in new})
    if len(by_key) > MAX_TAGS:
        raise ValueError(f"Tags: a resource holds at most {MAX_TAGS} tags.")
    return list(by_key.values())
