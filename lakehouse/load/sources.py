"""What a load reads: a local path, a glob, a folder or an s3:// URI, resolved into files, and
refused when any of it lies outside the allowed load roots (setting LOAD_ROOTS).

A root may hold `{tenant}`, which becomes the loading tenant's name (`data/imports/{tenant}`):
then each tenant loads only from its own folder or prefix.

A root says how to reach its files: an `s3://bucket/prefix?endpoint_override=…` root carries
the endpoint and options, so a source names only `s3://bucket/prefix/key` and may not bring its
own options (which could point the server at any host). Credentials come from the environment,
as pyarrow.fs reads them. A source file is a filesystem URI plus a path, so a Dask worker on any
host rebuilds the filesystem itself: no live handle travels.
"""

from __future__ import annotations

import fnmatch
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from lakehouse.config import Settings
from lakehouse.errors import ConfigurationError, Forbidden, InvalidInput

FORMATS = {"parquet": "parquet", "csv": "csv", "ndjson": "ndjson", "jsonl": "ndjson",
           "json": "ndjson"}
EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".ndjson": "ndjson",
              ".jsonl": "ndjson", ".json": "ndjson"}
COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")  # text formats only; Parquet compresses inside
WILDCARDS = frozenset("*?[")
MAX_FILES = 100_000
_SHOWN = 300  # a source is echoed in errors, cut to this length
TENANT_PLACEHOLDER = "{tenant}"


@dataclass(frozen=True)
class SourceFile:
    fs_uri: str  # the filesystem, as a URI any process can rebuild it from
    path: str  # inside that filesystem: "/abs/file.csv" or "bucket/key.parquet"
    format: str  # parquet | csv | ndjson
    size: int
    name: str  # as the caller wrote it, for messages: "data/imports/a.csv", "s3://bucket/key"

    def filesystem(self) -> pafs.FileSystem:
        return filesystem(self.fs_uri)

    @property
    def stem(self) -> str:
        """The file name without its extensions: "lineitem" for "lineitem.parquet"."""
        name = PurePosixPath(self.path).name
        for suffix in COMPRESSIONS:
            name = name.removesuffix(suffix)
        return name.rsplit(".", 1)[0] if "." in name[1:] else name


@functools.lru_cache(maxsize=64)
def filesystem(fs_uri: str) -> pafs.FileSystem:
    # One per root and process: an S3 filesystem keeps a connection pool worth reusing.
    return pafs.FileSystem.from_uri(fs_uri)[0]


@dataclass(frozen=True)
class LoadRoot:
    uri: str  # the filesystem's URI: file:///abs/dir, s3://bucket/prefix?endpoint_override=…
    scheme: str  # "file" or "s3"
    base: str  # the root inside its filesystem: "/abs/dir" or "bucket/prefix"
    reserved: tuple[str, ...] = ()  # the platform's own state below it: never a source

    def holds(self, path: str) -> bool:
        return _under(path, self.base.rstrip("/") or "/") and not self.is_reserved(path)

    def for_tenant(self, tenant: str) -> LoadRoot:
        """This root as `tenant` may use it: `{tenant}` replaced by its (checked) name."""
        if TENANT_PLACEHOLDER not in self.base:
            return self
        base = self.base.replace(TENANT_PLACEHOLDER, tenant)
        uri = (Path(base).as_uri() if self.scheme == "file"
               else self.uri.replace(TENANT_PLACEHOLDER, tenant))
        return LoadRoot(uri, self.scheme, base, self.reserved)

    def is_reserved(self, path: str) -> bool:
        # A reserved file also covers the files that extend its name: catalog.db-wal, -shm.
        return any(_under(path, prefix) or path.startswith(prefix + "-")
                   for prefix in self.reserved)


def _under(path: str, folder: str) -> bool:
    return folder in ("/", path) or path.startswith(folder + "/")


def parse_roots(entries: Sequence[str], reserved: Sequence[str] = ()) -> tuple[LoadRoot, ...]:
    """LOAD_ROOTS: local folders (relative ones from the working directory) and s3:// URIs;
    `reserved` folders, files and URIs below them are refused as sources."""
    local_reserved = tuple(os.path.realpath(path) for scheme, path in map(_location, reserved)
                           if scheme == "file")
    s3_reserved = tuple(path for scheme, path in map(_location, reserved) if scheme == "s3")
    roots = []
    for entry in entries:
        scheme, path = _location(entry)
        if scheme == "file":
            real = os.path.realpath(path)
            roots.append(LoadRoot(Path(real).as_uri(), "file", real, local_reserved))
        elif scheme == "s3":
            roots.append(LoadRoot(entry, "s3", path, s3_reserved))
        else:
            raise ConfigurationError(f"LOAD_ROOTS: {entry[:_SHOWN]!r} is neither a folder nor "
                                     "an s3:// URI", details={"root": entry[:_SHOWN]})
    return tuple(roots)


def tenant_roots(roots: Sequence[LoadRoot], tenant: str) -> tuple[LoadRoot, ...]:
    return tuple(root.for_tenant(tenant) for root in roots)


def roots_for(settings: Settings) -> tuple[LoadRoot, ...]:
    """The load roots of these settings, less the platform's own state under them (DATA_DIR
    holds it by default): the warehouse (every tenant's tables), the WAL, the catalog
    database (password hashes too), ClickHouse's, Prefect's and Dask's folders, the logs."""
    reserved = [settings.storage_root, str(settings.wal_dir), str(settings.prefect_home),
                str(settings.dask_dir), str(settings.log_dir)]
    for url, scheme in ((settings.catalog_url, "sqlite:///"),
                        (settings.clickhouse_dsn, "chdb://")):
        if url.startswith(scheme):
            reserved.append(url[len(scheme) - 1 if scheme == "sqlite:///" else len(scheme):]
                            .split("?")[0])
    return parse_roots(settings.load_root_list, reserved)


def _location(entry: str) -> tuple[str, str]:
    """("file", local path) or ("s3", "bucket/prefix"); anything else keeps its scheme."""
    parts = urlsplit(entry)
    if parts.scheme in ("", "file"):
        return "file", os.path.abspath(os.path.expanduser(parts.path if parts.scheme
                                                          else entry))
    if parts.scheme == "s3" and parts.netloc:
        return "s3", f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
    return parts.scheme, entry


def resolve(source: str, roots: Sequence[LoadRoot], format: str | None = None,
            ) -> list[SourceFile]:
    """The files of `source` (sorted by name), each with its format.

    InvalidInput for a malformed source, a format that cannot be told or no file at all;
    Forbidden when the source or any file it reaches (through a symlink, say) lies outside
    every load root.
    """
    wanted = _format(format)
    text = source.strip()
    if not text or "\x00" in text:
        raise InvalidInput("the source is empty or not a path", code="invalid_source")
    parts = urlsplit(text)
    if parts.scheme == "s3":
        if parts.query or parts.fragment:
            raise InvalidInput("an s3:// source takes no options; they come from LOAD_ROOTS",
                               code="invalid_source", details={"source": text[:_SHOWN]})
        path = f"{parts.netloc}/{parts.path.lstrip('/')}".rstrip("/")
        files, listed = _resolve_in(path, [r for r in roots if r.scheme == "s3"], "s3", text)
    elif parts.scheme in ("", "file"):
        local = parts.path if parts.scheme else text
        path = os.path.abspath(os.path.expanduser(local))
        files, listed = _resolve_in(path, [r for r in roots if r.scheme == "file"], "file",
                                    text)
    else:
        raise InvalidInput(f"unsupported source scheme {parts.scheme!r}; use a path or s3://",
                           code="invalid_source", details={"source": text[:_SHOWN]})
    typed = [_with_format(f, wanted, skip_unknown=listed) for f in files]
    found = [f for f in typed if f is not None]
    if not found:
        raise _not_found(text)
    return found


def _resolve_in(path: str, roots: Sequence[LoadRoot], scheme: str, shown: str,
                ) -> tuple[list[SourceFile], bool]:
    """The files under `path` (a file, a folder or a glob), and whether a folder was listed."""
    segments = path.split("/")
    fixed = next((i for i, s in enumerate(segments) if WILDCARDS & set(s)), len(segments))
    base = "/".join(segments[:fixed]) or "/"
    if scheme == "file":
        base = os.path.realpath(base)  # a symlink or '..' must not lead out of the roots
    if any(r.is_reserved(base) for r in roots):
        raise Forbidden("the source is the platform's own data (warehouse, log, catalog), "
                        "not a load source", code="source_outside_load_roots",
                        details={"source": shown[:_SHOWN]})
    root = next((r for r in roots if r.holds(base)), None)
    if root is None:
        raise Forbidden("the source is outside the allowed load roots (setting LOAD_ROOTS)",
                        code="source_outside_load_roots", details={"source": shown[:_SHOWN]})
    found, listed = _found(filesystem(root.uri), base, segments[fixed:], shown)
    # A folder or glob over a root may reach the platform's own files: never the caller's.
    found = [info for info in found if not root.is_reserved(info.path)]
    if not found:
        raise _not_found(shown)
    if len(found) > MAX_FILES:
        raise InvalidInput(f"the source holds more than {MAX_FILES} files; load it in parts",
                           code="too_many_files", details={"source": shown[:_SHOWN]})
    files = []
    for info in sorted(found, key=lambda i: i.path):
        real = os.path.realpath(info.path) if scheme == "file" else info.path
        name = (_as_written(shown, info.path[len(base):]) if scheme == "file"
                else f"s3://{real}")
        if not root.holds(real):
            raise Forbidden("the source reaches outside the allowed load roots",
                            code="source_outside_load_roots",
                            details={"source": shown[:_SHOWN], "file": name[:_SHOWN]})
        files.append(SourceFile(root.uri, real, "", int(info.size or 0), name))
    return files, listed


def _as_written(shown: str, below: str) -> str:
    """A local file's name for messages, as the caller wrote its source: the source's folder
    part (before any wildcard) as written, then the file's path below it. Never the server's
    resolved absolute path (its working directory, its symlinks), which the caller did not
    write and need not know."""
    written = urlsplit(shown).path if shown.startswith("file:") else shown
    segments = written.split("/")
    fixed = next((i for i, s in enumerate(segments) if WILDCARDS & set(s)), len(segments))
    prefix = "/".join(segments[:fixed]).rstrip("/") or ("/" if written.startswith("/") else "")
    below = below.strip("/")
    if not below:
        return prefix
    return f"{prefix.rstrip('/')}/{below}" if prefix else below


def _found(fs: pafs.FileSystem, base: str, pattern: list[str], shown: str,
           ) -> tuple[list[pafs.FileInfo], bool]:
    """The files of a file, a folder or a glob below `base`; and whether a folder was listed."""
    if pattern:
        return [info for info in _listed(fs, base, None if "**" in pattern else len(pattern))
                if _matches(info.path[len(base):].strip("/").split("/"), pattern)], False
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.File:
        return [info], False
    if info.type == pafs.FileType.Directory:
        return _listed(fs, base, None), True
    raise _not_found(shown)


def _listed(fs: pafs.FileSystem, base: str, depth: int | None) -> list[pafs.FileInfo]:
    """Files below `base`: only its own when a pattern has one segment (`*.csv`)."""
    selector = pafs.FileSelector(base, recursive=depth != 1, allow_not_found=True)
    return [info for info in fs.get_file_info(selector)
            if info.type == pafs.FileType.File and not _hidden(info.path[len(base):])]


def _hidden(relative: str) -> bool:
    """Dot files and `_SUCCESS`-style markers that writers leave beside their data."""
    return any(part[:1] in (".", "_") for part in relative.strip("/").split("/"))


def _matches(path: list[str], pattern: list[str]) -> bool:
    """Glob match by path segments; `**` matches any number of segments (none included)."""
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(_matches(path[i:], pattern[1:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], pattern[0]) and _matches(
        path[1:], pattern[1:])


def _format(format: str | None) -> str | None:
    if format is None:
        return None
    found = FORMATS.get(format)  # exactly a listed name, as the documents list them
    if found is None:
        raise InvalidInput(f"the format is one of {', '.join(FORMATS)}, or none to take "
                           "each file's from its extension",
                           code="invalid_format", details={"format": format[:40]})
    return found


def _with_format(file: SourceFile, wanted: str | None, skip_unknown: bool,
                 ) -> SourceFile | None:
    """The file with its format; in a listed folder, files of no known format are skipped."""
    name = PurePosixPath(file.path).name.lower()
    compressed = name.endswith(COMPRESSIONS)
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    found = wanted or EXTENSIONS.get(PurePosixPath(name).suffix)
    if found is None and skip_unknown:
        return None
    if found is None:
        raise InvalidInput("cannot tell the format of a file from its name; pass the format",
                           code="invalid_format", details={"file": file.name[:_SHOWN]})
    if found == "parquet" and compressed:
        raise InvalidInput("a Parquet file compresses inside; load it uncompressed",
                           code="invalid_format", details={"file": file.name[:_SHOWN]})
    return SourceFile(file.fs_uri, file.path, found, file.size, file.name)


def _not_found(shown: str) -> InvalidInput:
    return InvalidInput("the source does not exist or holds no files",
                        code="source_not_found", details={"source": shown[:_SHOWN]})
