"""Bind every catalog table of a qualified tree to the caller's tenant, by construction.

The contract with the executor: after `bind`, each catalog table in the tree reads
`"<binding schema>"."<table>" AS "<alias>"`, where the binding schema is `tenant_schema(tenant)`
and `<table>` is the catalog's spelling of one of the tenant's tables. The executor runs the SQL
in a DuckDB connection of its own in which that schema holds exactly the relations listed in
`bindings` — each one its own snapshot scan of (tenant, table) — and nothing else: no other
schema with tables, external access and replacement scans off. A name the guard missed therefore
finds nothing to read, and the tenant comes from the token, never from the query text.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from lakehouse.sql.problems import Problem, problem_at, refusal
from lakehouse.sql.schema_view import SchemaView


def tenant_schema(tenant: str) -> str:
    """The DuckDB schema a tenant's tables are bound in. Prefixed so that no tenant name can be
    one of DuckDB's own schemas (main, temp, pg_catalog, information_schema)."""
    return f"tenant_{tenant}"


@dataclass(frozen=True, slots=True)
class TableBinding:
    tenant: str
    table: str  # the catalog's spelling
    schema: str  # tenant_schema(tenant)
    aliases: tuple[str, ...]  # how the query names it (one per reference)

    @property
    def bound_as(self) -> str:
        return f"{self.schema}.{self.table}"

    def to_json(self) -> dict[str, object]:
        return {"tenant": self.tenant, "table": self.table, "bound_as": self.bound_as,
                "aliases": list(self.aliases)}


def bind(tree: exp.Expr, view: SchemaView) -> tuple[exp.Expr, tuple[TableBinding, ...]]:
    """A copy of a qualified tree with its catalog tables bound to `view.tenant`, and the tables
    it reads. A table that is neither one of the tenant's nor a CTE is refused."""
    bound = tree.copy()
    schema = tenant_schema(view.tenant)
    aliases: dict[str, list[str]] = {}
    rewritten: set[int] = set()
    for scope in traverse_scope(bound):
        for source in scope.sources.values():
            if not isinstance(source, exp.Table) or id(source) in rewritten:
                continue
            table = view.table(source.name)
            if table is None:  # qualify reports these first; never bind what is not there
                raise refusal([problem_at(source, "unknown_table",
                                          f"no table {source.name!r} in your tenant")])
            alias = source.alias_or_name
            source.set("this", exp.to_identifier(table.name, quoted=True))
            source.set("db", exp.to_identifier(schema, quoted=True))
            source.set("catalog", None)
            source.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
            rewritten.add(id(source))
            aliases.setdefault(table.name, []).append(alias)
    _check_all_bound(bound, rewritten)
    bindings = tuple(TableBinding(view.tenant, name, schema, tuple(found))
                     for name, found in sorted(aliases.items()))
    return bound, bindings


def _check_all_bound(tree: exp.Expr, rewritten: set[int]) -> None:
    """Every table node is bound or names a CTE; anything else would be resolved by DuckDB's
    own search path, so it is refused rather than trusted."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    problems: list[Problem] = []
    for table in tree.find_all(exp.Table):
        if id(table) in rewritten or (not table.args.get("db") and table.name in ctes):
            continue
        problems.append(problem_at(table, "unresolved_table",
                                   f"cannot tell which table {table.sql()[:80]} is"))
    if problems:
        raise refusal(problems)
