"""The logical plan of a bound query: a tree of steps (lakehouse.sql.plan_steps) the optimizer
consumes.

Steps, from the leaves up: `scan` (a tenant table, the columns it must produce and the predicates
that may be evaluated inside it), `values`, `subquery` (a derived table or CTE with its own plan),
`join`, `filter`, `aggregate`, `window`, `project`, `distinct`, `sort`, `limit`, and
`set_operation`; a step whose expressions hold subqueries (IN, EXISTS, scalar) lists their plans
under `subqueries`. A predicate is pushed to a scan only when it reads that scan's columns alone,
holds no subquery, aggregate or window, and the scan is not the null-filled side of an outer join;
what is pushed is not repeated above. Expressions are sqlglot trees over the query's aliases.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from lakehouse.sql.describe import columns_by_source
from lakehouse.sql.plan_steps import (
    Aggregate,
    Derived,
    Distinct,
    Filter,
    Join,
    Limit,
    Output,
    Project,
    Scan,
    SetOperation,
    Sort,
    SortKey,
    Step,
    Unsupported,
    Values,
    Window,
    sql,
)
from lakehouse.sql.problems import problem_at, refusal
from lakehouse.sql.schema_view import SchemaView

Pushed = dict[str, list[exp.Expr]]  # conditions moved into the scan of each alias


def conjuncts(node: exp.Expr | None) -> list[exp.Expr]:
    """The parts of a condition joined by AND, parentheses around them removed (the one
    splitter the planner, the optimizer's rules and the scans share)."""
    if node is None:
        return []
    if isinstance(node, exp.And):
        return conjuncts(node.left) + conjuncts(node.right)
    if isinstance(node, exp.Paren) and not isinstance(node.this, exp.Query):
        return conjuncts(node.this)
    return [node]


def _only_source(predicate: exp.Expr) -> str | None:
    """The one alias all columns of `predicate` belong to, if it may move below a join."""
    if predicate.find(exp.Query, exp.AggFunc, exp.Window, exp.Subquery) is not None:
        return None
    tables = {c.table for c in predicate.find_all(exp.Column)}
    if len(tables) != 1 or "" in tables:
        return None
    return tables.pop()


class _Planner:
    def __init__(self, tree: exp.Expr, view: SchemaView) -> None:
        self.view = view
        self.columns = columns_by_source(tree, view)
        self.ctes: dict[str, exp.Expr] = {}
        self.scanned: set[int] = set()  # the table nodes planned as scans
        self.planned: set[int] = set()  # the query nodes planned

    def query(self, node: exp.Expr) -> Step:
        while isinstance(node, exp.Subquery):
            node = node.this
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            for cte in with_.expressions:
                self.ctes[cte.alias_or_name] = cte.this
        self.planned.add(id(node))
        if isinstance(node, exp.SetOperation):
            step: Step = SetOperation(node.key, bool(node.args.get("distinct")),
                                      self.query(node.left), self.query(node.right))
            return self._rest(node, self._order_limit(node, step))
        if isinstance(node, exp.Select):
            return self._rest(node, self.select(node))
        return Unsupported(node)

    def _rest(self, node: exp.Expr, step: Step) -> Step:
        """`step` with the plans of the queries nested in `node` that no step above planned
        (in GROUP BY, ORDER BY, JOIN … ON, QUALIFY, an unreferenced CTE): each reads its
        tables, and a scan must know every reference to its table — else its columns and
        predicate would be those of the other references only."""
        missed = [q for q in node.find_all(exp.Select, exp.SetOperation)
                  if q is not node and id(q) not in self.planned
                  and q.find_ancestor(exp.Select, exp.SetOperation) is node]
        if missed:
            step = replace(step, subqueries=(*step.subqueries, *(self.query(q) for q in missed)))
        return step

    def source(self, node: exp.Expr,  # noqa: PLR0911 - one return per kind of source
               pushed: Pushed) -> Step:
        if isinstance(node, exp.Lateral):
            return replace(self.source(node.this, pushed), lateral=True)
        alias = node.alias_or_name
        if isinstance(node, exp.Subquery) and (isinstance(node.unnest(), exp.Table) or (
                isinstance(node.this, exp.Subquery) and node.this.args.get("joins"))):
            # A parenthesised join, `(a JOIN b ON …)`: sqlglot keeps it as a subquery around
            # its first source (a table, or a derived table), whose `joins` hold the rest.
            return self._joined(node.this, pushed)
        if isinstance(node, exp.Table) and node.args.get("db"):
            self.scanned.add(id(node))
            table = self.view.table(node.name)
            offered = [c.name for c in table.columns] if table else []
            wanted = self.columns.get(id(node), set())
            return Scan(node.name, self.view.tenant, f"{node.args['db'].name}.{node.name}",
                        alias, tuple(c for c in offered if c in wanted),
                        tuple(pushed.get(alias, ())))
        if isinstance(node, exp.Table) and node.name in self.ctes:
            return Derived(alias, self.query(self.ctes[node.name]), cte=node.name)
        if isinstance(node, exp.Subquery):
            return Derived(alias, self.query(node.this))
        if isinstance(node, exp.Values):
            return Values(alias, len(node.expressions))
        return Unsupported(node, alias, has_alias=True)

    def _joined(self, node: exp.Expr, pushed: Pushed) -> Step:
        step = self.source(node, pushed)
        for join in node.args.get("joins") or []:
            step = self.join(step, join, pushed)
        return step

    def select(self, node: exp.Select) -> Step:
        from_ = node.args.get("from_")
        joins: list[exp.Join] = list(node.args.get("joins") or [])
        null_filled = _null_filled(from_, joins)
        pushed: Pushed = {}
        remaining = []
        for predicate in conjuncts(node.args["where"].this if node.args.get("where") else None):
            alias = _only_source(predicate)
            if alias is not None and alias not in null_filled and self._is_scan(alias, from_,
                                                                                 joins):
                pushed.setdefault(alias, []).append(predicate)
            else:
                remaining.append(predicate)
        step: Step
        if isinstance(from_, exp.From):
            step = self.source(from_.this, pushed)
            for join in joins:
                step = self.join(step, join, pushed)
        else:
            step = Values(None, 1)  # SELECT without FROM
        if remaining:
            step = self._with_subqueries(node, remaining, Filter(_all(remaining), step))
        return self._select_top(node, step)

    def _with_subqueries(self, owner: exp.Select, parts: list[exp.Expr], step: Step) -> Step:
        """`step` with the plans of the subqueries its expressions hold (IN, EXISTS, scalar),
        so every scan of the query appears in the plan."""
        nested = [q for part in parts for q in part.find_all(exp.Select, exp.SetOperation)
                  if q.find_ancestor(exp.Select, exp.SetOperation) is owner]
        if nested:
            step = replace(step, subqueries=tuple(self.query(q) for q in nested))
        return step

    def _is_scan(self, alias: str, from_: exp.Expr | None, joins: list[exp.Join]) -> bool:
        sources = ([from_.this] if isinstance(from_, exp.From) else []) + [j.this for j in joins]
        return any(isinstance(s, exp.Table) and s.args.get("db") and s.alias_or_name == alias
                   for s in sources)

    def join(self, left: Step, join: exp.Join, pushed: Pushed) -> Step:
        right_node = join.this
        alias = right_node.alias_or_name
        condition = []
        for predicate in conjuncts(join.args.get("on")):
            owner = _only_source(predicate)
            # An ON condition on the joined table alone filters it before the join, unless
            # that table keeps its rows whatever the condition says (the preserved side).
            if owner == alias and join.side in ("", "LEFT") and self._is_scan(alias, None,
                                                                              [join]):
                pushed.setdefault(alias, []).append(predicate)
            else:
                condition.append(predicate)
        right = self.source(right_node, pushed)
        kind = " ".join(p for p in (join.side, join.kind) if p).lower() or (
            "cross" if not join.args.get("on") and not join.args.get("using") else "inner")
        return Join(kind, _all(condition) if condition else None,
                    tuple(join.args.get("using") or ()), left, right)

    def _select_top(self, node: exp.Select, step: Step) -> Step:
        selects = node.expressions
        having = node.args.get("having")
        group = node.args.get("group")
        aggregates = [a for e in [*selects, *( [having] if having else [])]
                      for a in e.find_all(exp.AggFunc) if a.find_ancestor(exp.Window) is None]
        if group is not None or aggregates:
            step = Aggregate(tuple(group.expressions if group else ()), _by_text(aggregates),
                             step)
        if having is not None:
            step = self._with_subqueries(node, [having.this],
                                         Filter(having.this, step, having=True))
        windows = _by_text([w for e in selects for w in e.find_all(exp.Window)])
        if windows:
            step = Window(windows, step)
        step = self._with_subqueries(node, list(selects), Project(tuple(
            Output(_output_name(e), e.this if isinstance(e, exp.Alias) else e)
            for e in selects), step))
        if node.args.get("distinct"):
            step = Distinct(step)
        return self._order_limit(node, step)

    def _order_limit(self, node: exp.Expr, step: Step) -> Step:
        order = node.args.get("order")
        if isinstance(order, exp.Order):
            step = Sort(tuple(SortKey(o.this, bool(o.args.get("desc")),
                                      bool(o.args.get("nulls_first")))
                              for o in order.expressions), step)
        limit, offset = node.args.get("limit"), node.args.get("offset")
        if limit is not None or offset is not None:
            step = Limit(_number(limit), _number(offset), step)
        return step


def _all(parts: list[exp.Expr]) -> exp.Expr:
    """The conjunction of conditions taken from the query (`and_` builds it from copies, so the
    bound tree keeps its nodes)."""
    return parts[0] if len(parts) == 1 else exp.and_(*parts)


def _by_text(nodes: list[exp.Expr]) -> tuple[exp.Expr, ...]:
    """Each distinct expression once, in the order of its text (a stable plan to show)."""
    unique = {sql(n): n for n in nodes}
    return tuple(unique[text] for text in sorted(unique))


def _output_name(node: exp.Expr) -> str:
    """A result column's name: its alias or column name, else its SQL (DuckDB names unnamed
    results by their expression too)."""
    return node.alias_or_name if isinstance(node, exp.Alias | exp.Column) else sql(node)


def _number(clause: exp.Expr | None) -> int | exp.Expr | None:
    if clause is None:
        return None
    value = clause.expression if isinstance(clause, exp.Limit | exp.Offset) else clause
    if isinstance(value, exp.Literal) and value.is_int:
        return int(value.name)
    return value if isinstance(value, exp.Expr) else None


def _null_filled(from_: exp.Expr | None, joins: list[exp.Join]) -> set[str]:
    """Aliases whose rows an outer join may replace with nulls: predicates on them in WHERE
    must run after the join, not inside their scan."""
    filled: set[str] = set()
    seen = [from_.this.alias_or_name] if isinstance(from_, exp.From) else []
    for join in joins:
        alias = join.this.alias_or_name
        if join.side in ("LEFT", "FULL"):
            filled.add(alias)
        if join.side in ("RIGHT", "FULL"):
            filled.update(seen)
        seen.append(alias)
    return filled


def logical_plan(tree: exp.Expr, view: SchemaView) -> Step:
    """The plan of a qualified, bound tree (see the module docstring for the steps). Refused
    when a table the query reads has no scan step: the executor registers only the relations
    the plan scans, so DuckDB would not find it."""
    planner = _Planner(tree, view)
    plan = planner.query(tree)
    missed = [t for t in tree.find_all(exp.Table)
              if t.args.get("db") and id(t) not in planner.scanned]
    if missed:
        raise refusal([problem_at(t, "unsupported_query",
                                  f"cannot plan the read of table {t.name!r} in this position")
                       for t in missed])
    return plan
