"""Where data files live: a storage root URI and typed path builders under it."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.fs as pafs


@dataclass(frozen=True)
class StorageRoot:
    """A root URI (`file:///…/warehouse`, `s3://bucket/prefix`) and its filesystem."""

    uri: str
    fs: pafs.FileSystem
    base: str

    @staticmethod
    def parse(uri: str) -> StorageRoot:
        fs, base = pafs.FileSystem.from_uri(uri)
        return StorageRoot(uri, fs, base.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def full(self, relative: str) -> str:
        return f"{self.base}/{relative}"


def data_file_path(tenant: str, table: str, partition: str, first_seq: int,
                   last_seq: int) -> str:
    """A flushed file's path, named from its WAL sequence range: a replayed flush writes the
    same name, so it can never leave a second copy of the same rows behind."""
    folder = f"{tenant}/{table}/{partition}" if partition else f"{tenant}/{table}"
    return f"{folder}/{first_seq:016d}-{last_seq:016d}.parquet"
