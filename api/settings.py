"""Where Ferry keeps its data on this host, as every command finds it."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir(given: str | None = None) -> Path:
    """--data-dir, else FERRY_DATA_DIR, else $XDG_DATA_HOME/ferry (~/.local/share/ferry)."""
    if given:
        return Path(given).expanduser().resolve()
    if os.environ.get("FERRY_DATA_DIR"):
        return Path(os.environ["FERRY_DATA_DIR"]).expanduser().resolve()
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "ferry"
