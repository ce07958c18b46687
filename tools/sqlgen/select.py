"""SELECT statements, set operations, subqueries and window functions (pure): the half of the
generator that builds queries from the expressions of expressions.py and the FROM clauses of
queries.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tools.sqlgen.queries import OrderKey, QueryGenerator, Select, weighted
from tools.sqlgen.schema import NUMERIC, Kind
from tools.sqlgen.scope import Col, Ctx, Key

SET_OPS = {"UNION": 4, "UNION ALL": 4, "EXCEPT": 3, "INTERSECT": 3, "EXCEPT ALL": 1,
           "INTERSECT ALL": 1}
MAX_LEVEL = 3  # subqueries nest at most this deep


class SelectGenerator(QueryGenerator):
    # SELECT ----------------------------------------------------------------------------------

    def select(self, level: int, outer: list[Col], want: list[Kind] | None, shape: str,
               depth: int, *, top: bool = False) -> Select:
        simple = shape in ("split_aggregate", "top_n")
        count = self.table_count(simple, level) if level < MAX_LEVEL else 1
        from_sql, cols, where, rows = self.from_clause(level, depth, count, simple=simple,
                                                       distinct_tables=simple)
        ctx = Ctx(cols, outer, level, clause="where", subqueries=depth > 0 and not simple,
                  simple=simple)
        if self.chance(0.6):
            for _ in range(self.pick((1, 1, 1, 2, 2, 3))):
                found = self.simple_predicate(ctx) if self.chance(0.55) else None
                where.append(found or self.predicate(ctx, min(depth, 2)))
        if shape in ("aggregate", "split_aggregate"):
            select = self._aggregate(ctx, want, depth, top=top)
        else:
            select = self._rows(ctx, want, shape, depth, top=top)
        select.from_sql, select.where, select.cols, select.rows = from_sql, where, cols, rows
        if select.distinct:
            self.st.uses.add("distinct")
        if top:
            self._order(select, total=self.chance(0.5) or shape == "top_n",
                        limit=shape == "top_n" or self.chance(0.2))
        elif want is not None and level > 0 and self.chance(0.08):
            self._order(select, total=True, limit=True)
        return select

    def _name(self, names: list[str], natural: str | None, top: bool) -> str:
        """The output name of the next item: `c{i}` below the top (derived tables and CTEs
        name their columns so), else the column's own name or `o{i}`; now and then a name
        already taken (a duplicate output name) when that is allowed."""
        i = len(names)
        if not top:
            return f"c{i}"
        taken = [n for n in names if not n.startswith("?")]
        if taken and self.features.duplicate_output_names and self.chance(0.08):
            self.st.uses.add("duplicate_output_names")
            return self.pick(taken)
        if natural is not None and natural not in names:
            return natural
        return f"o{i}"

    def _rows(self, ctx: Ctx, want: list[Kind] | None, shape: str, depth: int, *,
              top: bool) -> Select:
        kinds = want or [self.comparable_kind(ctx) for _ in range(self.st.rng.randint(1, 4))]
        select = Select([], [], [], distinct=shape == "distinct" or self.chance(0.05))
        item_ctx = Ctx(ctx.cols, ctx.outer, ctx.level, clause="select",
                       subqueries=ctx.subqueries, simple=ctx.simple)
        if top and want is None and shape in ("plain", "distinct") and self.chance(0.15):
            self._star(select, ctx.cols)
        windows = shape == "window"
        for position, kind in enumerate(kinds):
            if windows and (position == 0 or self.chance(0.4)):
                made = self.window(item_ctx, kind)
                if made is not None:
                    self._add(select, made, kind, None, top)
                    continue
            col = self.column(kind, item_ctx, outer=False) if self.chance(0.6) else None
            if col is not None:
                self._add(select, col.ref, kind, col.name, top)
            else:
                self._add(select, self.value(kind, item_ctx, max(0, min(depth, 2))), kind,
                          None, top)
        return select

    def _add(self, select: Select, sql: str, kind: Kind, natural: str | None, top: bool) -> None:
        subquery = "(SELECT " in sql
        if top and natural is None and (
                (subquery and self.features.unaliased_subquery_in_select and self.chance(0.2))
                or (not subquery and self.features.unaliased_expressions
                    and self.chance(0.03))):
            # Named by DuckDB after the expression; ORDER BY refers to it by position.
            self.st.uses.add("unaliased_subquery_in_select" if subquery
                             else "unaliased_expression")
            select.items.append(sql)
            select.names.append(f"?{len(select.names)}")
            select.kinds.append(kind)
            return
        name = self._name(select.names, natural, top)
        select.items.append(sql if name == natural else f"{sql} AS {name}")
        select.names.append(name)
        select.kinds.append(kind)

    def _star(self, select: Select, cols: list[Col]) -> None:
        by_alias: dict[str, list[Col]] = {}
        for col in cols:
            by_alias.setdefault(col.qualifier, []).append(col)
        bases = {r for r in by_alias if r in self.st.bases}
        allowed = [a for a in by_alias if self.features.star_over_base_tables or a not in bases]
        if not allowed:
            return
        alias = self.pick(allowed)
        names = [c.name for c in by_alias[alias]]
        if not self.features.duplicate_output_names and (
                len(set(names)) < len(names) or set(names) & set(select.names)):
            return
        if alias in bases:
            self.st.uses.add("star_over_base_tables")
        self.st.uses.add("star")
        select.items.append(f"{alias}.*")
        select.names.extend(names)
        select.kinds.extend(c.kind for c in by_alias[alias])

    def _aggregate(self, ctx: Ctx, want: list[Kind] | None, depth: int, *, top: bool) -> Select:
        self.st.uses.add("group_by")
        keys: list[Key] = []
        for _ in range(self.st.rng.randint(0, 3) if ctx.cols else 0):
            col = self.column(None, ctx, outer=False)
            if col is None or any(k.sql == col.ref for k in keys):
                continue
            if ctx.simple or self.chance(0.75):
                keys.append(Key(col.ref, col.kind))
            else:
                kind = self.comparable_kind(ctx)
                sql = self.value(kind, Ctx(ctx.cols, [], ctx.level, subqueries=False), 1)
                if sql not in [k.sql for k in keys] and any(c.ref in sql for c in ctx.cols):
                    keys.append(Key(sql, kind))
        agg_ctx = Ctx(ctx.cols, [], ctx.level, keys=keys, clause="select",
                      subqueries=ctx.subqueries, simple=ctx.simple)
        kinds = want or [self.pick([k.kind for k in keys] + [Kind.INT, Kind.FLOAT,
                                                              self.comparable_kind(ctx)])
                         for _ in range(self.st.rng.randint(1, 4))]
        select = Select([], [], [], group=[k.sql for k in keys])
        if not ctx.simple and self.chance(0.05):
            select.distinct = True
        for kind in kinds:
            matching = [k for k in keys if k.kind is kind]
            if matching and self.chance(0.4):
                key = self.pick(matching)
                natural = key.sql.rpartition(".")[2] if key.sql.count(".") == 1 and (
                    key.sql.replace(".", "").replace("_", "").isalnum()) else None
                self._add(select, key.sql, kind, natural, top)
            else:
                self._add(select, self.value(kind, agg_ctx, max(1, min(depth, 2))), kind, None,
                          top)
        if self.chance(0.3):
            self.st.uses.add("having")
            select.having = self.predicate(Ctx(ctx.cols, [], ctx.level, keys=keys,
                                               clause="having", subqueries=ctx.subqueries,
                                               simple=ctx.simple), 1)
        return select

    # ORDER BY / LIMIT ------------------------------------------------------------------------

    def _order(self, select: Select, *, total: bool, limit: bool) -> None:
        self.render_order(select, total=total or limit, limit=limit)

    def render_order(self, select: Select | None, *, total: bool, limit: bool,
                     names: list[str] | None = None) -> tuple[str, str, tuple[OrderKey, ...]]:
        names = names if names is not None else (select.names if select else [])
        positions = list(range(len(names)))
        self.st.rng.shuffle(positions)
        if not total:
            positions = positions[:self.st.rng.randint(1, len(positions))]
        unique = len(set(names)) == len(names)
        keys, parts = [], []
        for position in positions:
            descending = self.chance(0.4)
            nulls = self.pick(("", " NULLS FIRST", " NULLS LAST"))
            # DuckDB puts NULLs last unless told otherwise, ascending or descending.
            keys.append(OrderKey(position, descending, nulls == " NULLS FIRST"))
            ref = (names[position] if unique and self.chance(0.6)
                   and not names[position].startswith("?") else str(position + 1))
            parts.append(f"{ref}{' DESC' if descending else ''}{nulls}")
        order = "ORDER BY " + ", ".join(parts)
        tail = ""
        if limit:
            tail = f"LIMIT {self.st.rng.randint(0, 8)}"
            if self.chance(0.25):
                tail += f" OFFSET {self.st.rng.randint(1, 4)}"
            self.st.uses.add("limit")
        self.st.uses.add("order_by")
        if select is not None:
            select.order, select.limit, select.order_keys = order, tail, tuple(keys)
        return order, tail, tuple(keys)

    # Set operations --------------------------------------------------------------------------

    def set_operation_kinds(self, level: int, depth: int) -> tuple[str, list[Kind]]:
        self._kinds: list[Kind] = []
        sql, _, _ = self.set_operation(level, [], None, depth)
        return sql, self._kinds

    def set_operation(self, level: int, outer: list[Col], want: list[Kind] | None, depth: int,
                      *, top: bool = False) -> tuple[str, tuple[OrderKey, ...], bool]:
        """Two to four SELECTs joined by UNION, EXCEPT, INTERSECT (ALL or not); the first one
        decides the column kinds when `want` does not."""
        kinds = want
        parts: list[str] = []
        names: list[str] = []
        for i in range(self.st.rng.randint(2, 4)):
            branch = self.select(level, outer, kinds, self.pick(("plain", "plain", "aggregate",
                                                                 "distinct")), max(0, depth - 1),
                                 top=False)
            if i == 0:
                names = branch.names
                kinds = branch.kinds
                self._kinds = list(kinds)
            text = branch.sql()
            if branch.order or self.chance(0.2):
                text = f"({text})"
            if i:
                op = weighted(self.st.rng, SET_OPS)
                self.st.uses.add(f"setop:{op.lower()}")
                parts.append(op)
            parts.append(text)
        sql = " ".join(parts)
        if not top:
            return sql, (), False
        limit = self.chance(0.25)
        order, tail, keys = "", "", tuple[OrderKey, ...]()
        if limit or self.chance(0.4):
            order, tail, keys = self.render_order(None, total=limit or self.chance(0.5),
                                                  limit=limit, names=names)
        return " ".join(p for p in (sql, order, tail) if p), keys, bool(tail)

    # Subqueries ------------------------------------------------------------------------------

    def _inner(self, ctx: Ctx, depth: int) -> tuple[str, list[Col], str, Ctx] | None:
        """A subquery's FROM, its columns, its WHERE clause (with a correlation now and then)
        and the context of its expressions; None when nesting is deep enough."""
        if depth < 0 or ctx.level + 1 > MAX_LEVEL:
            return None
        level = ctx.level + 1
        correlated_ok = ctx.keys is None and (
            ctx.clause != "select" or self.features.correlated_subqueries_in_select)
        outer = ctx.cols + ctx.outer if correlated_ok else []
        from_sql, cols, where, _ = self.from_clause(level, max(0, depth - 1),
                                                    self.pick((1, 1, 1, 2)), simple=False)
        inner = Ctx(cols, outer, level, clause="where", subqueries=depth > 0)
        if outer and self.chance(0.6):
            pairs = [(i, o) for i in cols for o in outer if i.kind is o.kind]
            if pairs:
                i, o = self.pick(pairs)
                self.st.used(o, level)
                where.append(f"{i.ref} {self.pick(('=', '=', '<', '<>'))} {o.ref}")
        if self.chance(0.6):
            where.append(self.predicate(inner, min(depth, 1)))
        return from_sql, cols, f" WHERE {' AND '.join(where)}" if where else "", inner

    @contextlib.contextmanager
    def _nested(self, ctx: Ctx) -> Iterator[int]:
        """The level of a subquery of `ctx`, open while it is written: a correlation from
        inside marks it, and a correlated subquery in a SELECT list is counted as a use."""
        level = ctx.level + 1
        previous = self.st.open_levels.get(level)
        self.st.open_levels[level] = False
        try:
            yield level
        finally:
            correlated = self.st.open_levels.pop(level, False)
            if previous is not None:
                self.st.open_levels[level] = previous
            if correlated and ctx.clause == "select":
                self.st.uses.add("correlated_subquery_in_select")  # issue 20's minimal form

    def scalar_subquery(self, kind: Kind, ctx: Ctx, depth: int) -> str | None:
        with self._nested(ctx) as level:
            found = self._inner(ctx, depth)
            if found is None:
                return None
            from_sql, cols, condition, inner = found
            aggregate = self.aggregate(kind, Ctx(cols, inner.outer, level, keys=[],
                                                 clause="select"), max(0, depth - 1))
            if aggregate is not None and self.chance(0.75):
                body = f"SELECT {aggregate} FROM {from_sql}{condition}"
            else:
                value = self.value(kind, Ctx(cols, inner.outer, level, clause="select",
                                             subqueries=depth > 0), max(0, depth - 1))
                order = f"{self.pick(('', ' DESC'))}{self.pick(('', ' NULLS FIRST'))}"
                body = f"SELECT {value} AS c0 FROM {from_sql}{condition} ORDER BY 1{order} LIMIT 1"
            self.st.uses.add("scalar_subquery")
            return f"({body})"

    def column_subquery(self, kind: Kind, ctx: Ctx, depth: int) -> str | None:
        with self._nested(ctx) as level:
            if self.features.set_operations and self.chance(0.12) and depth > 0:
                body, _, _ = self.set_operation(level, [], [kind], depth - 1)
                return f"({body})"
            found = self._inner(ctx, depth)
            if found is None:
                return None
            from_sql, cols, condition, inner = found
            if self.chance(0.2) and cols:
                key = self.pick(cols)
                aggregate = self.aggregate(kind, Ctx(cols, inner.outer, level, keys=[],
                                                     clause="select"), 0)
                if aggregate is not None:
                    return f"(SELECT {aggregate} FROM {from_sql}{condition} GROUP BY {key.ref})"
            value = self.value(kind, Ctx(cols, inner.outer, level, clause="select",
                                         subqueries=depth > 0), max(0, depth - 1))
            distinct = "DISTINCT " if self.chance(0.2) else ""
            tail = ""
            if self.chance(0.1):
                tail = f" ORDER BY 1{self.pick(('', ' DESC'))} LIMIT {self.st.rng.randint(1, 4)}"
            return f"(SELECT {distinct}{value} AS c0 FROM {from_sql}{condition}{tail})"

    def exists_subquery(self, ctx: Ctx, depth: int) -> str | None:
        with self._nested(ctx):
            found = self._inner(ctx, depth)
            if found is None:
                return None
            from_sql, _, condition, _ = found
            what = self.pick(("1", "*", "NULL"))
            return f"(SELECT {what} FROM {from_sql}{condition})"

    def window(self, ctx: Ctx, want: Kind) -> str | None:
        """A window function of kind `want` whose value does not depend on the order of peers:
        aggregates over whole partitions or RANGE frames, ranks, and row-order functions over
        an ORDER BY of every visible column; None when no such function has that kind."""
        cols = ctx.cols
        if not cols:
            return None
        part = self.st.rng.sample(cols, self.st.rng.randint(0, min(2, len(cols))))
        partition = f"PARTITION BY {', '.join(c.ref for c in part)} " if part else ""
        everything = ", ".join(f"{c.ref}{self.pick(('', ' DESC'))}" for c in cols)
        roll = self.st.rng.random()
        plain = Ctx(cols, [], ctx.level, keys=[], clause="select", subqueries=False,
                    simple=True)
        made: str | None = None
        if roll < 0.55:
            aggregate = self.aggregate(want, plain, 0)
            if aggregate is not None and roll < 0.3:
                made = f"{aggregate} OVER ({partition.strip()})"
            elif aggregate is not None:
                made = f"{aggregate} OVER ({partition}ORDER BY {self.pick(cols).ref})"
        elif roll < 0.75 and want in (Kind.INT, Kind.FLOAT):
            keys = ", ".join(c.ref for c in self.st.rng.sample(cols, min(len(cols),
                                                                        self.pick((1, 2)))))
            name = self.pick(("rank", "dense_rank") if want is Kind.INT
                             else ("cume_dist", "percent_rank"))
            made = f"{name}() OVER ({partition}ORDER BY {keys})"
        elif want is Kind.INT and self.chance(0.4):
            name = self.pick(("row_number()", "ntile(3)"))
            made = f"{name} OVER ({partition}ORDER BY {everything})"
        else:
            same = [c for c in cols if c.kind is want]
            if same:
                col = self.pick(same)
                if want in NUMERIC and want is not Kind.FLOAT and self.chance(0.3):
                    frame = " ROWS BETWEEN 1 PRECEDING AND CURRENT ROW"
                    made = f"sum({col.ref}) OVER ({partition}ORDER BY {everything}{frame})"
                else:
                    name = self.pick((f"lag({col.ref})", f"lead({col.ref}, 2)",
                                      f"first_value({col.ref})"))
                    made = f"{name} OVER ({partition}ORDER BY {everything})"
        if made is not None:
            self.st.uses.add("window")
        return made
CAST_NAME = {Kind.INT: "BIGINT", Kind.FLOAT: "DOUBLE", Kind.DECIMAL: "DECIMAL(38, 4)",
             Kind.TEXT: "VARCHAR", Kind.DATE: "DATE", Kind.TIMESTAMP: "TIMESTAMP",
             Kind.TIMESTAMPTZ: "TIMESTAMPTZ", Kind.BOOL: "BOOLEAN"}
