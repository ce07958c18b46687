"""Query Interpreter: parse SQL or the JSON DSL, validate a query, and show its logical plan.

Every endpoint works on the caller's tenant only: the tables a query may name are that tenant's,
taken from the catalog (and the write buffer, for tables with records not yet flushed), and every
table the answer mentions is bound to it. The DSL's shape is defined here, at the edge; the
domain receives frozen values (lakehouse.sql.dsl).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any, ClassVar, Literal, Union

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field, StringConstraints, model_validator

from api.bodies import NOT_BLANK, ONE_FORM, StrictBody, listed
from api.core import Core
from api.deps import CoreDep, require_role
from lakehouse.auth.identity import Caller, Role
from lakehouse.errors import InvalidInput
from lakehouse.executor.output_names import duckdb_names, written_names
from lakehouse.ingest.keys import TableRef
from lakehouse.sql import dsl
from lakehouse.sql.describe import tree_json
from lakehouse.sql.interpret import (
    Interpretation,
    Outline,
    check_tree,
    interpret_tree,
    outline,
    validate,
)
from lakehouse.sql.parse import (
    DEFAULT_DIALECT,
    MAX_QUERY_CHARS,
    check_dialect,
    known_dialects,
    parse_query,
)
from lakehouse.sql.problems import Problem
from lakehouse.sql.schema_view import SchemaView

router = APIRouter(tags=["interpreter"])
ReaderDep = Annotated[Caller, Depends(require_role(Role.READER))]

Scalar = str | int | float | bool | None
SqlText = Annotated[str, StringConstraints(max_length=dsl.MAX_EXPRESSION_CHARS)]
Name = Annotated[str, StringConstraints(max_length=300)]
# A table or an alias: the code checks the rule (400 invalid_dsl); the documents state it.
PlainName = Annotated[str, Field(max_length=63, json_schema_extra={
    "pattern": f"^{dsl.PLAIN_NAME.pattern}$"})]
_MAX_DSL_DEPTH = 32  # nested and/or/not levels; deeper JSON is refused, not recursed into


class _Strict(StrictBody):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CompareModel(_Strict):
    column: Name
    op: str = Field(max_length=20, description="=, !=, <>, <, <=, >, >=, in, not_in, like, "
                    "not_like, ilike, between, is_null, is_not_null")
    value: Scalar | list[Scalar] = Field(default=None, description="a list for in, not_in and "
                                         "between ([low, high])")
    agg: str | None = Field(default=None, max_length=20, description="in having: count, sum, "
                            "avg, min, max, count_distinct of the column")


class AndModel(_Strict):
    and_: list[ConditionModel] = Field(alias="and", min_length=1, max_length=200)


class OrModel(_Strict):
    or_: list[ConditionModel] = Field(alias="or", min_length=1, max_length=200)


class NotModel(_Strict):
    not_: ConditionModel = Field(alias="not")


ConditionModel = Union[CompareModel, AndModel, OrModel, NotModel, SqlText]  # noqa: UP007


class SelectModel(_Strict):
    column: Name | None = None
    agg: str | None = Field(default=None, max_length=20)
    expr: SqlText | None = None
    as_: PlainName | None = Field(default=None, alias="as")


class OrderModel(_Strict):
    column: Name | None = None
    expr: SqlText | None = None
    desc: bool = False
    nulls_first: bool | None = None


class JoinOnModel(_Strict):
    left: Name
    right: Name


class JoinModel(_Strict):
    table: PlainName
    as_: PlainName | None = Field(default=None, alias="as")
    type: Literal["inner", "left", "right", "full", "cross"] = "inner"
    on: list[JoinOnModel] | SqlText = Field(default_factory=list)


class DslModel(_Strict):
    """A query as JSON; `select` items and `order_by` keys may be plain column names."""

    mistaken: ClassVar[Mapping[str, str]] = {
        "table": "from", "columns": "select", "filter": "where", "order": "order_by",
        "group": "group_by", "join": "joins"}

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "from": "records", "select": ["name", "age"],
        "where": {"column": "age", "op": ">", "value": 25}, "order_by": ["name"],
        "limit": 10}]})

    from_: PlainName = Field(alias="from")
    as_: PlainName | None = Field(default=None, alias="as")
    select: list[SelectModel | Name] = Field(default_factory=list, max_length=1000)
    where: ConditionModel | None = None
    group_by: list[Name] = Field(default_factory=list, max_length=100)
    having: ConditionModel | None = None
    order_by: list[OrderModel | Name] = Field(default_factory=list, max_length=100)
    limit: int | None = Field(default=None, ge=0, le=10**12)
    offset: int | None = Field(default=None, ge=0, le=10**12)
    joins: list[JoinModel] = Field(default_factory=list, max_length=32)
    distinct: bool = False

    def to_domain(self) -> dsl.DslQuery:
        return dsl.DslQuery(
            table=self.from_, alias=self.as_,
            select=tuple(dsl.Output(column=s) if isinstance(s, str) else dsl.Output(
                column=s.column, agg=s.agg, expression=s.expr, alias=s.as_) for s in self.select),
            where=_condition(self.where, 0) if self.where is not None else None,
            group_by=tuple(self.group_by),
            having=_condition(self.having, 0) if self.having is not None else None,
            order_by=tuple(dsl.OrderKey(column=o) if isinstance(o, str) else dsl.OrderKey(
                column=o.column, expression=o.expr, descending=o.desc, nulls_first=o.nulls_first)
                for o in self.order_by),
            limit=self.limit, offset=self.offset,
            joins=tuple(dsl.Join(j.table, j.as_, j.type, dsl.SqlCondition(j.on)
                                 if isinstance(j.on, str) else
                                 tuple(dsl.JoinOn(p.left, p.right) for p in j.on))
                        for j in self.joins),
            distinct=self.distinct)


for _model in (AndModel, OrModel, NotModel, DslModel):
    _model.model_rebuild()


def _condition(model: ConditionModel, depth: int) -> dsl.Condition:
    if depth > _MAX_DSL_DEPTH:
        raise InvalidInput(f"conditions nest at most {_MAX_DSL_DEPTH} levels deep",
                           code="invalid_dsl")
    if isinstance(model, str):
        return dsl.SqlCondition(model)
    if isinstance(model, CompareModel):
        value = tuple(model.value) if isinstance(model.value, list) else model.value
        return dsl.Compare(model.column, model.op, value, model.agg)
    if isinstance(model, AndModel):
        return dsl.AllOf(tuple(_condition(c, depth + 1) for c in model.and_))
    if isinstance(model, OrModel):
        return dsl.AnyOf(tuple(_condition(c, depth + 1) for c in model.or_))
    return dsl.Negate(_condition(model.not_, depth + 1))


class SqlBody(_Strict):
    mistaken: ClassVar[Mapping[str, str]] = {
        "sql": "query", "statement": "query", "q": "query", "text": "query"}

    # Parses before `orders` exists; what does not bind yet is listed under `warnings`.
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"query": "SELECT customer_id, SUM(amount) FROM orders GROUP BY customer_id"}]})

    query: str = Field(max_length=MAX_QUERY_CHARS, json_schema_extra=NOT_BLANK,
                       description="one read-only SQL statement")
    dialect: str | None = Field(default=None, max_length=40,
                                json_schema_extra=listed(known_dialects(), nullable=True),
                                description=f"any dialect sqlglot reads; {DEFAULT_DIALECT} if "
                                            "absent")


class QueryBody(_Strict):
    """A query as SQL text (`query`, with an optional `dialect`) or as the JSON DSL (`dsl`)."""

    mistaken: ClassVar[Mapping[str, str]] = SqlBody.mistaken

    model_config = ConfigDict(json_schema_extra={**ONE_FORM, "examples": [
        {"query": "SELECT name, age FROM records WHERE age > 25"}]})

    query: str | None = Field(default=None, max_length=MAX_QUERY_CHARS,
                              json_schema_extra=NOT_BLANK)
    dialect: str | None = Field(default=None, max_length=40,
                                json_schema_extra=listed(known_dialects(), nullable=True))
    dsl_: DslModel | None = Field(default=None, alias="dsl")

    @model_validator(mode="after")
    def _one_form(self) -> QueryBody:
        if (self.query is None) == (self.dsl_ is None):
            raise ValueError("send exactly one of `query` (SQL) and `dsl`")
        return self


def schema_view(core: Core, tenant: str) -> SchemaView:
    """The caller's tables as the interpreter sees them: the catalog's, widened by the write
    buffer's schema for tables with records written since (or never flushed)."""
    schemas: dict[str, Any] = {}
    made_up: set[str] = set()  # tables whose data_id a load made up (hidden from `*`)
    if core.catalog is not None:
        for table in core.catalog.tables(tenant):
            schemas[table.name] = table.schema
            if not table.user_keys:
                made_up.add(table.name)
    if core.ingest is not None:
        for stats in core.ingest.table_stats(tenant):
            if stats["records"] or stats["table"] not in schemas:
                buffered = core.ingest.table_schema(TableRef(tenant, stats["table"]))
                if buffered is not None:
                    schemas[stats["table"]] = buffered.to_json()
                    made_up.discard(stats["table"])  # records carry their keys
    return SchemaView.from_schemas(tenant, schemas, made_up)


def _interpret(core: Core, caller: Caller, query: str | None, dialect: str | None,
               dsl_query: DslModel | None) -> tuple[Interpretation, SchemaView]:
    check_dialect(dialect)  # named beside a DSL query too: a wrong one is still wrong
    view = schema_view(core, caller.tenant)
    if dsl_query is not None:
        return interpret_tree(dsl.to_tree(dsl_query.to_domain()), DEFAULT_DIALECT, view,
                              duckdb_names), view
    # Outputs named as the executor names them (lakehouse/executor/output_names.py).
    tree, name = parse_query(query or "", dialect)
    written = partial(written_names, query or "") if name == "duckdb" else None
    return interpret_tree(tree, name, view, duckdb_names, written), view


def _answer(found: Interpretation) -> dict[str, Any]:
    return {**found.to_json(), "tree": tree_json(found.parsed)}


def _outline(core: Core, caller: Caller, query: str, dialect: str | None) -> Outline:
    tree, name = parse_query(query, dialect)
    written = partial(written_names, query) if name == "duckdb" else None
    return outline(tree, name, schema_view(core, caller.tenant), duckdb_names, written)


@router.post("/parse/sql")
async def parse_sql(body: SqlBody, core: CoreDep, caller: ReaderDep) -> dict[str, Any]:
    """The syntax tree, the tables and columns it reads, its kind, and the tenant-bound SQL.
    Parsing does not need the tables to exist: names and types that do not bind (yet) are
    listed under `warnings`, with `sql` null (`/validate/query` treats them as errors). SQL
    that does not parse is wrong (400); anything but a read-only query over your own tables
    is refused (403)."""
    found = await run_in_threadpool(_outline, core, caller, body.query, body.dialect)
    return {**found.to_json(), "tree": tree_json(found.parsed)}


@router.post("/parse/dsl")
async def parse_dsl(body: DslModel, core: CoreDep, caller: ReaderDep) -> dict[str, Any]:
    """The SQL and tree a JSON DSL query means, checked like SQL."""
    found, _ = await run_in_threadpool(_interpret, core, caller, None, None, body)
    return _answer(found)


def _validate(core: Core, caller: Caller, body: QueryBody) -> list[Problem]:
    check_dialect(body.dialect)  # named beside a DSL query too: a wrong one is still wrong
    view = schema_view(core, caller.tenant)
    if body.dsl_ is not None:
        try:
            tree = dsl.to_tree(body.dsl_.to_domain())
        except InvalidInput as exc:
            return [Problem(exc.code, exc.message)]
        return check_tree(tree, DEFAULT_DIALECT, view)[1]
    return validate(body.query or "", body.dialect, view)


@router.post("/validate/query")
async def validate_query(body: QueryBody, core: CoreDep, caller: ReaderDep) -> dict[str, Any]:
    """`valid`, or every problem with its code, line and column: unknown table, unknown or
    ambiguous column, forbidden statement or function, type mismatch, syntax error."""
    problems = await run_in_threadpool(_validate, core, caller, body)
    return {"valid": not problems, "problems": [p.to_json() for p in problems]}


@router.post("/transform/plan")
async def transform_plan(body: QueryBody, core: CoreDep, caller: ReaderDep) -> dict[str, Any]:
    """The logical plan: scan / filter / join / aggregate / project / sort / limit steps, each
    scan with the columns it needs and the predicates it can evaluate."""
    found, view = await run_in_threadpool(_interpret, core, caller, body.query, body.dialect,
                                          body.dsl_)
    return {**found.to_json(), "plan": found.plan(view).to_json()}
