"""The answers of the operations a client chains (write, load, follow the run; submit a query,
follow it, page its rows), as the OpenAPI documents declare them.

The routes build these answers as plain dicts in the layers that know them (the write plan,
the query registry, Prefect's runs), so these models only describe them: they are declared with
`responses=` and never re-validate an answer on its way out. The fuzz test holds every answer
it provokes to its declared schema (Schemathesis' `response_schema_conformance`), so a model and
the answer it describes cannot drift apart unnoticed. Fields a later version may add are
allowed (`extra="allow"`): a generated client keeps them in `additional_properties`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.errors import ErrorBody
from api.query_results import MEDIA


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class TableSeqs(_Answer):
    """The sequence numbers one table's accepted records took, consecutive in request order."""

    table: str
    count: int
    first_seq: int
    last_seq: int


class RecordOutcome(_Answer):
    """A record that was not simply written (a duplicate, a reject, a conflict), or the one
    record of a one-record batch."""

    index: int = Field(description="Its position in the request, from 0")
    status: str = Field(description="`durable`, `duplicate`, `rejected` or `conflict`")
    data_id: str | None = None
    table: str | None = None
    seq: int | None = Field(default=None, description="Its sequence number, when stored")
    error: str | None = Field(default=None, description="Why not stored: an error code")
    reason: str | None = Field(default=None, description="Why not stored, and what to do")
    line: int | None = Field(default=None, description="Its NDJSON line, from 1")


class BatchAnswer(_Answer):
    """The answer to `POST /data/store` once every accepted record is fsynced."""

    status: str = Field(description="`durable`; `duplicate` for a replay of the same "
                                    "Idempotency-Key")
    accepted: int
    duplicate: int
    rejected: int
    conflict: int
    tables: list[TableSeqs]
    records: list[RecordOutcome]
    replayed: bool | None = Field(default=None,
                                  description="True when this is a stored answer replayed")


class RunStarted(_Answer):
    """A long operation started as a Prefect flow run."""

    run_id: str = Field(description="Follow it at GET /runs/{run_id} (Operation Node)")


class RunProgress(_Answer):
    done: int = Field(description="Tasks of the run that ended")
    total: int = Field(description="Tasks of the run so far (Prefect records a task a moment "
                                   "after it changes state, so a run that just ended may "
                                   "show fewer for a second or two)")


class RunStatus(_Answer):
    """A run's state as Prefect names it, its progress and, once it ended, its result."""

    id: str
    name: str
    flow: str | None
    state: str | None = Field(description="Prefect's state type: SCHEDULED, PENDING, "
                                          "RUNNING, COMPLETED, FAILED, CRASHED, CANCELLED …")
    progress: RunProgress
    started: str | None = Field(description="ISO-8601, once it started")
    ended: str | None = Field(description="ISO-8601, once it ended")
    error: str | None = Field(description="Why it failed, if it did")
    result: Any = Field(description="What the flow answered (rows, files, snapshot), once "
                                    "it completed")


class QuerySubmitted(_Answer):
    """An async query, accepted: follow it at `status_url` (also in `Location`)."""

    query_id: str
    state: str
    status_url: str


class ResultColumn(_Answer):
    name: str
    type: str = Field(description="Its Arrow type, e.g. `int64`, `string`, `timestamp[us]`")


class QueryRows(_Answer):
    """A page of a finished query's rows (format=json)."""

    query_id: str
    columns: list[ResultColumn]
    rows: list[list[Any]] = Field(description="The page's rows, each in `columns`' order")
    row_count: int = Field(description="Rows of the whole result")
    offset: int = Field(description="The page's first row in the whole result")
    returned: int = Field(description="Rows in this page")
    truncated: bool = Field(description="More rows follow this page")
    next_offset: int | None
    next_uri: str | None = Field(description="The next page (GET it until this is null)")
    elapsed_s: float
    bytes_scanned: int
    strategy: str | None = Field(description="`single_node` or how it was distributed")
    planning_ms: float | None
    snapshot: int | None = Field(description="The catalog snapshot it read")


class QueryProgress(_Answer):
    stage: str
    fragments_done: int
    fragments_total: int
    workers: dict[str, int] = Field(description="Jobs of the query each Dask worker ran")


class QueryStatus(_Answer):
    """A query's state and progress; its rows are at GET /query/{query_id}/result."""

    query_id: str
    state: str = Field(description="queued, planning, running, finished, failed or cancelled")
    mode: str
    user: str
    progress: QueryProgress
    rows: int | None = Field(description="Rows of the result, once finished")
    bytes_scanned: int
    elapsed_s: float
    planning_ms: float | None
    snapshot: int | None
    error: ErrorBody | None = Field(description="Why it failed, if it did")
    flow_run_id: str | None
    strategy: str | None


STATUS_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"model": QueryStatus, "description": "The query's state and progress"}}

# A query's rows come in the format the request names: json pages, or a stream of the others.
ROWS_ANSWER: dict[int | str, dict[str, Any]] = {200: {
    "model": QueryRows,
    "description": "The rows: a json page (follow `next_uri`), or all of them streamed as "
                   "jsonl, csv, an Arrow IPC stream or Parquet",
    "content": {media: {"schema": {"type": "string", "format": "binary"}}
                for media in MEDIA.values()},
    "headers": {"X-Query-Id": {"description": "The query's id", "schema": {"type": "string"}},
                "X-Row-Count": {"description": "Rows of the whole result (sync answers)",
                                "schema": {"type": "integer"}}}}}
