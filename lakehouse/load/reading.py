"""Reading source files with pyarrow, a bounded chunk at a time.

Parquet is read by row groups (a load part is a run of row groups, so a large file spreads over
many workers); CSV and NDJSON are streamed block by block. Text formats have their types
inferred from their first block (BLOCK_BYTES) when planning, and are then parsed with the
planned types, so every block of every file lands in the same types and a value that does not
parse is an error naming its file, not a silently different column.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from lakehouse.errors import InvalidInput
from lakehouse.json_nesting import NestingScan
from lakehouse.load.sources import SourceFile

BLOCK_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 256 * 1024 * 1024  # a text file's chunk stops at this size in memory, or rows
_PROBLEM = 300  # characters of a parser's message kept in an error
MAX_NESTING = 64  # levels of arrays and objects a JSON source may nest


@dataclass(frozen=True)
class FileLayout:
    schema: pa.Schema  # as the file holds it, before normalization
    row_groups: tuple[int, ...] = ()  # Parquet: the rows of each row group
    group_bytes: tuple[int, ...] = ()  # Parquet: the uncompressed bytes of each row group


def inspect(file: SourceFile) -> FileLayout:
    """The schema (and Parquet row groups) of a file, reading only its footer or first block."""
    with _reading(file):
        if file.format == "parquet":
            with file.filesystem().open_input_file(file.path) as handle:
                metadata = pq.ParquetFile(handle).metadata
                schema = metadata.schema.to_arrow_schema()
                groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
            return FileLayout(schema, tuple(g.num_rows for g in groups),
                              tuple(g.total_byte_size for g in groups))
        with _text_reader(file, {}) as reader:
            return FileLayout(reader.schema)
    raise AssertionError("unreachable")  # pragma: no cover - _reading re-raises


def read_chunks(file: SourceFile, row_groups: tuple[int, ...] | None,
                types: Mapping[str, pa.DataType], chunk_rows: int) -> Iterator[pa.Table]:
    """The rows of a file (of these row groups, for Parquet) in tables of about `chunk_rows`.

    Text formats are parsed in `types` (the plan's), so every block of every file lands in the
    same types, and decimals are parsed exactly instead of through floats.
    """
    with _reading(file):
        if file.format == "parquet":
            with file.filesystem().open_input_file(file.path) as handle:
                parquet = pq.ParquetFile(handle)
                groups = list(range(parquet.metadata.num_row_groups)) if row_groups is None \
                    else list(row_groups)
                yield from _parquet_chunks(parquet, groups, chunk_rows)
            return
        with _text_reader(file, types) as reader:
            pending: list[pa.RecordBatch] = []
            rows = size = 0
            for batch in reader:
                pending.append(batch)
                rows += batch.num_rows
                size += batch.nbytes
                if rows >= chunk_rows or size >= CHUNK_BYTES:
                    yield pa.Table.from_batches(pending)
                    pending, rows, size = [], 0, 0
            if pending:
                yield pa.Table.from_batches(pending)


def _parquet_chunks(parquet: pq.ParquetFile, groups: list[int], chunk_rows: int,
                    ) -> Iterator[pa.Table]:
    """Whole row groups up to `chunk_rows` at a time (decoded column-parallel by pyarrow); a
    row group larger than that alone is streamed in batches, so memory stays bounded."""
    metadata = parquet.metadata
    run: list[int] = []
    rows = 0
    for group in groups:
        size = metadata.row_group(group).num_rows
        if size > chunk_rows:
            if run:
                yield parquet.read_row_groups(run, use_threads=True)
                run, rows = [], 0
            for batch in parquet.iter_batches(batch_size=chunk_rows, row_groups=[group]):
                yield pa.Table.from_batches([batch])
            continue
        if run and rows + size > chunk_rows:
            yield parquet.read_row_groups(run, use_threads=True)
            run, rows = [], 0
        run.append(group)
        rows += size
    if run:
        yield parquet.read_row_groups(run, use_threads=True)


@contextlib.contextmanager
def _text_reader(file: SourceFile, types: Mapping[str, pa.DataType]) -> Iterator[Any]:
    with file.filesystem().open_input_stream(file.path, compression="detect") as stream:
        if file.format == "csv":
            yield pacsv.open_csv(
                stream, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
                convert_options=pacsv.ConvertOptions(column_types=dict(types)))
            return
        # pyarrow's JSON parser makes a date only from a number; ISO text ("2026-01-05") is
        # read as a string and cast to the date by the conversion (convert.conform), which
        # refuses text that is no date, naming the file.
        explicit = pa.schema([(name, pa.string() if pa.types.is_date(kind) else kind)
                              for name, kind in types.items() if not pa.types.is_null(kind)])
        yield pajson.open_json(
            _NestingChecked(stream, file),
            read_options=pajson.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=pajson.ParseOptions(explicit_schema=explicit if types else None,
                                              unexpected_field_behavior="infer"))


class _NestingChecked(io.RawIOBase):
    """A JSON file as pyarrow reads it, every block scanned for nesting first: pyarrow's JSON
    parser crashes the process (SIGSEGV) on objects nested tens of thousands deep, and a load
    part may run in the services' own process. Stored schemas stop at 32 levels, so a file past
    MAX_NESTING could not be loaded anyway."""

    def __init__(self, stream: Any, file: SourceFile) -> None:
        super().__init__()
        self._stream = stream
        self._file = file
        self._scan = NestingScan(MAX_NESTING)
        self._position = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = bytes(self._stream.read(size if size is not None and size >= 0 else None))
        try:
            self._scan.feed(data)
        except InvalidInput as exc:
            raise InvalidInput(f"{self._file.name}: {exc.message}", code=exc.code,
                               details={**exc.details, "file": self._file.name}) from None
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position


@contextlib.contextmanager
def _reading(file: SourceFile) -> Iterator[None]:
    """Errors of a file become a clear InvalidInput naming it; nothing else is caught."""
    try:
        yield
    except FileNotFoundError as exc:
        raise InvalidInput("a source file disappeared while loading", code="source_not_found",
                           details={"file": file.name}) from exc
    except (pa.ArrowException, OSError, ValueError) as exc:
        problem = str(exc).strip()[:_PROBLEM]
        raise InvalidInput(f"{file.name} cannot be read as {file.format}: {problem}",
                           code="unparsable_source",
                           details={"file": file.name, "format": file.format,
                                    "problem": problem}) from exc
