"""Probe objects: proof that a Dask worker reads and writes the same storage root as the
control plane.

A worker on another host given `file:///srv/data/warehouse` would write its flush to *its*
disk, the catalog would register the file and the log would be trimmed: acknowledged rows
that the control plane can no longer read. So before a worker gets any work, it writes an
object under the root holding a nonce only the control plane knows, and reads back one the
control plane wrote; the control plane then reads the worker's object. Both directions must
hold, byte for byte.

Probe objects live under `.probes/` (no tenant name starts with a dot, and cleanup looks only
at `.parquet` files) and are removed once read.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass

from lakehouse.storage.location import StorageRoot

PROBE_DIR = ".probes"


@dataclass(frozen=True)
class ProbeNames:
    """Where one check's objects live: the control plane's, and one per worker."""

    check: str  # a fresh id per check

    def control_plane(self) -> str:
        return f"{PROBE_DIR}/{self.check}/control-plane.probe"

    def worker(self, worker: str) -> str:
        return f"{PROBE_DIR}/{self.check}/{_slug(worker)}.probe"


def _slug(worker: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in worker)[:120]


def write_object(root: StorageRoot, relative: str, payload: bytes) -> None:
    path = root.full(relative)
    root.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with root.fs.open_output_stream(path) as out:
        out.write(payload)


def read_object(root: StorageRoot, relative: str) -> bytes | None:
    """The object's bytes, or None when it is not there (for this reader)."""
    try:
        with root.fs.open_input_stream(root.full(relative)) as stream:
            return bytes(stream.read())
    except (FileNotFoundError, OSError):
        return None


def remove_check(root: StorageRoot, names: ProbeNames) -> None:
    with contextlib.suppress(OSError):  # already gone, or never made: nothing to tidy
        root.fs.delete_dir(root.full(f"{PROBE_DIR}/{names.check}"))


def on_worker(root_uri: str, names: ProbeNames, worker: str, expected: bytes,
              payload: bytes) -> dict[str, str]:
    """Run on a worker: read the control plane's object, write this worker's own. Never
    raises for a storage failure: what went wrong is the answer."""
    answer = {"host": socket.gethostname(), "pid": str(os.getpid())}
    try:
        root = StorageRoot.parse(root_uri)
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        return answer | {"error": f"cannot open the storage root: {exc}"[:300]}
    seen = read_object(root, names.control_plane())
    if seen != expected:
        return answer | {"error": "the worker cannot read the control plane's probe object: "
                                  "it sees a storage root of its own (a local folder on "
                                  "another host?) or may not read the shared one"}
    try:
        write_object(root, names.worker(worker), payload)
    except OSError as exc:
        return answer | {"error": f"cannot write under the storage root: {exc}"[:300]}
    return answer
