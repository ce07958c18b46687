"""Refuse anything but a read-only query over plain table names (pure checks over one tree).

Accepted: SELECT, WITH, UNION / INTERSECT / EXCEPT, subqueries and VALUES. Refused, in every
dialect and quoting (sqlglot has already read `"READ_PARQUET"`, backticks, comments and case into
the same nodes): statements that write, define, configure or attach anything; table functions and
any other call in FROM position; strings and paths used as tables; names qualified by a catalog or
schema; calls of functions that read files, URLs, settings or the environment. Which plain names
are the tenant's tables is decided later, by `bind`, against the `SchemaView`.

The guard is the first of two fences: the executor also runs fragments in DuckDB with external
access and replacement scans switched off, so a form missed here still cannot read a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import exp

from lakehouse.sql.problems import Problem, problem_at


def _classes(*names: str) -> tuple[type[exp.Expr], ...]:
    # Looked up by name: a class a future sqlglot drops must not break the import.
    found = (getattr(exp, name, None) for name in names)
    return tuple(c for c in found if isinstance(c, type))


# Statements (and statement-like clauses) that are never part of a read-only query.
_FORBIDDEN_NODES = _classes(
    "DML", "Insert", "Update", "Delete", "Merge", "Copy", "Export", "LoadData", "Directory",
    "DirectoryStage", "Create", "Drop", "Alter", "AlterSession", "Attach", "Detach", "Command",
    "Comment", "Commit", "Rollback", "Transaction", "ConnectTo", "Disconnect", "Declare",
    "Describe", "Execute", "ExecuteSql", "Install", "Kill", "Pragma", "Set", "SetItem", "Show",
    "Summarize", "SwapTable", "TruncateTable", "Undrop", "Use", "UserDefinedFunction", "Into",
    "Lock", "Grant", "Revoke", "Analyze", "Put", "Get", "ListStage", "StoredProcedure", "Block",
    "Return", "SessionParameter", "HistoricalData", "Version", "Changes", "Stream", "Cache",
    "Uncache", "Refresh",
)
_QUERY_ROOTS = (exp.Select, exp.SetOperation, exp.Subquery)

# Functions that reach outside the query's own tables: files, URLs, other databases, settings,
# the environment, or SQL given as a string. Matched on the lower-cased name.
FORBIDDEN_FUNCTIONS = frozenset({
    "getenv", "current_setting", "set_config", "glob", "sniff_csv", "query", "query_table",
    "system", "shell", "checkpoint", "force_checkpoint", "which_secret", "file", "url",
    "openrowset", "openquery", "opendatasource", "external_query", "dblink", "lo_import",
    "lo_export", "json_execute_serialized_sql", "from_substrait", "from_substrait_json",
    "get_substrait", "get_substrait_json", "load_extension", "install_extension", "st_read",
    "st_read_meta", "st_readosm", "st_readshp", "test_all_types", "enable_logging",
    "current_schemas", "current_database", "current_catalog", "current_role", "current_user",
    "session_user", "user", "version", "pragma",
})
FORBIDDEN_PREFIXES = (
    "read_", "parquet_", "duckdb_", "pragma_", "pg_", "sqlite_", "postgres_", "mysql_",
    "iceberg_", "delta_", "http", "load_", "install_", "system$", "sys_", "st_read", "ducklake_",
    "lo_", "json_execute", "excel_", "odbc_", "azure_", "s3_", "gcs_", "hf_",
)
# A table name with a dot, slash, colon or backslash is a path or URL, never one of ours.
_PATH_LIKE = re.compile(r"[./:\\~*?]")


def function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower()


def is_forbidden_function(name: str) -> bool:
    name = name.strip().lower()
    return name in FORBIDDEN_FUNCTIONS or name.startswith(FORBIDDEN_PREFIXES)


def _statement_kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return type(node).__name__.upper()


def check_root(tree: exp.Expr) -> list[Problem]:
    if isinstance(tree, _QUERY_ROOTS) and not isinstance(tree, _FORBIDDEN_NODES):
        return []
    return [problem_at(tree, "forbidden_statement",
                       f"only read-only queries (SELECT, WITH, UNION, INTERSECT, EXCEPT) are "
                       f"accepted; this is {_statement_kind(tree)}")]


def check_nodes(tree: exp.Expr) -> list[Problem]:
    """Statement nodes nested anywhere (a data-modifying CTE, SELECT … INTO, FOR UPDATE)."""
    problems = []
    for node in tree.walk():
        if node is not tree and isinstance(node, _FORBIDDEN_NODES):
            problems.append(problem_at(node, "forbidden_statement",
                                       f"{_statement_kind(node)} is not allowed in a query"))
    return problems


def check_functions(tree: exp.Expr) -> list[Problem]:
    problems = []
    for node in tree.find_all(exp.Func):
        name = function_name(node)
        if is_forbidden_function(name):
            problems.append(problem_at(node, "forbidden_function",
                                       f"the function {name}() is not allowed: it reads outside "
                                       "your tables"))
    return problems


def _source_problem(source: exp.Expr | None) -> Problem | None:  # noqa: PLR0911 - one per form
    """Why this FROM / JOIN item is not a plain table, a subquery or VALUES (None if it is)."""
    if source is None or isinstance(source, exp.Subquery | exp.Values):
        return None
    if isinstance(source, exp.Lateral):
        inner = source.this
        return None if isinstance(inner, exp.Subquery) else _call_problem(source, inner)
    if not isinstance(source, exp.Table):
        return _call_problem(source, source)
    name = source.this
    if isinstance(name, exp.Dot):  # a.b.c.d: more parts than catalog.schema.table
        return problem_at(source, "qualified_table",
                          f"{source.sql()[:80]}: name tables without a catalog or schema")
    if not isinstance(name, exp.Identifier):
        return _call_problem(source, name)
    if _PATH_LIKE.search(name.name):
        return problem_at(source, "file_access",
                          f"{name.name[:80]!r} looks like a file or URL; only your tables "
                          "can be queried")
    if source.args.get("db") or source.args.get("catalog"):
        return problem_at(source, "qualified_table",
                          f"{source.sql()[:80]}: name tables without a catalog or schema; "
                          "every table is one of your tenant's")
    return None


def _call_problem(at: exp.Expr, call: exp.Expr | None) -> Problem:
    name = function_name(call) if isinstance(call, exp.Func) else type(call).__name__.lower()
    return problem_at(at, "table_function",
                      f"{name} in FROM: only tables, subqueries and VALUES can be queried")


def check_sources(tree: exp.Expr) -> list[Problem]:
    problems = []
    for node in tree.walk():
        if isinstance(node, exp.From | exp.Join):
            problem = _source_problem(node.this)
            if problem is not None:
                problems.append(problem)
        elif isinstance(node, exp.Table) and not isinstance(node.parent, exp.From | exp.Join):
            # Tables in other positions (a UNNEST alias, a PIVOT source) get the same checks.
            problem = _source_problem(node)
            if problem is not None and problem.code != "table_function":
                problems.append(problem)
    return problems


def check_parameters(tree: exp.Expr) -> list[Problem]:
    """`$1`, `?`, `:name`: nothing binds them, so the query could only fail later."""
    return [problem_at(node, "unsupported_parameter",
                       "query parameters are not supported; write the values in the query")
            for node in tree.find_all(*_classes("Placeholder", "Parameter"))]


GUARD_RULES: tuple[Callable[[exp.Expr], list[Problem]], ...] = (
    check_root, check_nodes, check_functions, check_sources, check_parameters,
)


def guard(tree: exp.Expr) -> list[Problem]:
    """Every reason `tree` is not a read-only query over plain table names (empty if none)."""
    problems: list[Problem] = []
    seen: set[tuple[str, int | None, int | None]] = set()
    for rule in GUARD_RULES:
        for problem in rule(tree):
            key = (problem.code, problem.line, problem.column)
            if key not in seen:  # one offending node can trip two rules
                seen.add(key)
                problems.append(problem)
    return problems
