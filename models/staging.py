"""What activities ask of the staging store, counted by each and added up by the execution."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StagingTraffic(BaseModel):
    """What an activity asked of the staging store: requests, and the bytes it sent there (the
    objects it wrote, the keys it deleted) and read back (objects, listings)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    requests: int = 0
    bytes_written: int = 0
    bytes_read: int = 0

    def add(self, other: StagingTraffic) -> None:
        self.requests += other.requests
        self.bytes_written += other.bytes_written
        self.bytes_read += other.bytes_read

    def plus(self, other: StagingTraffic) -> StagingTraffic:
        total = self.model_copy()
        total.add(other)
        return total

    def describe(self) -> dict[str, int]:
        """As DescribeTaskExecution shows it (beyond DataSync)."""
        return {
            "Requests": self.requests,
            "BytesWritten": self.bytes_written,
            "BytesRead": self.bytes_read,
        }
