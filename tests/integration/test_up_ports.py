"""`lakehouse up` refuses to start when one of its ports is taken, and names the setting to
change, before it starts any process (a real listening socket, a real `lakehouse up`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def test_a_busy_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFECT_", "DASK_")) and k not in ("CATALOG_URL",)}
        env.update({"DATA_DIR": str(tmp_path / "data"), "ENVIRONMENT": "development",
                    "OPERATION_PORT": str(port), "COLUMNS": "200"})
        done = subprocess.run([str(Path(sys.executable).parent / "lakehouse"), "up"], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              check=False)
    assert done.returncode == 1, done.stderr
    assert f"OPERATION_PORT={port} (in use)" in done.stderr
    assert ".env" in done.stderr
    # Nothing was started: no process wrote a log, no state was created beyond the folder.
    assert not (tmp_path / "data" / "logs").exists()
