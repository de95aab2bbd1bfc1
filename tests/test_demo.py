"""`make demo`'s `ferry demo`, run as `make` runs it off a terminal: the embedded stack starts,
the sample tree is copied, and the stack stops with the demo, which says how to look again."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import FERRY
from helpers import differences, free_port

from starter.dev import HOST, port_is_open


def test_the_demo_copies_its_tree_and_stops_its_stack_off_a_terminal(workdir: Path) -> None:
    port, ui_port = free_port(), free_port()

    result = subprocess.run(
        [FERRY, "demo", "--data-dir", str(workdir), "--port", str(port), "--ui-port", str(ui_port)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout)
    assert final["Status"] == "SUCCESS"
    demo = workdir / "demo"
    assert differences(demo / "source", demo / "destination") == []
    assert final["FilesTransferred"] == final["EstimatedFilesToTransfer"] > 240
    # No address that no longer answers: how to start the stack again, then where to look.
    assert not port_is_open(HOST, ui_port) and not port_is_open(HOST, port)
    assert "See the execution in the Temporal UI" not in result.stderr
    dev = f"ferry dev --data-dir {workdir} --port {port} --ui-port {ui_port}"
    assert dev in result.stderr
    assert f"http://{HOST}:{ui_port}/namespaces/default/workflows/" in result.stderr
