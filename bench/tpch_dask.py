"""(b) of bench/tpch.py: TPC-H Q1, Q3 and Q6 as Dask DataFrame programs.

They read the generator's original Parquet files, as DuckDB does, with Dask's default dtypes
(pandas' Arrow-backed strings; Arrow's string views, which the generator writes, have no
pyarrow-backed pandas dtype yet), on the threaded scheduler with 2 threads: the fastest way Dask
runs on one machine (no pickling between processes), so the comparison favours Dask. Decimal
columns become float64 right after the read (Dask's groupby cannot sum Arrow decimals); that
cast is part of Dask's time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

THREADS = 2


def _read(paths: Sequence[str], columns: list[str], decimals: list[str]) -> Any:
    import dask.dataframe as dd

    frame = dd.read_parquet(list(paths), columns=columns)
    return frame.astype(dict.fromkeys(decimals, "float64")) if decimals else frame


def _compute(result: Any) -> Any:
    import dask

    with dask.config.set(scheduler="threads", num_workers=THREADS):
        return result.compute()


def q1(files: dict[str, Sequence[str]]) -> Any:
    money = ["l_quantity", "l_extendedprice", "l_discount", "l_tax"]
    li = _read(files["lineitem"], ["l_returnflag", "l_linestatus", "l_shipdate", *money], money)
    li = li[li.l_shipdate <= dt.date(1998, 9, 2)]
    li = li.assign(disc_price=li.l_extendedprice * (1 - li.l_discount))
    li = li.assign(charge=li.disc_price * (1 + li.l_tax))
    grouped = li.groupby(["l_returnflag", "l_linestatus"]).agg({
        "l_quantity": ["sum", "mean"], "l_extendedprice": ["sum", "mean"],
        "disc_price": "sum", "charge": "sum", "l_discount": ["mean", "count"]})
    return _compute(grouped).sort_index()


def q3(files: dict[str, Sequence[str]]) -> Any:
    cutoff = dt.date(1995, 3, 15)
    customer = _read(files["customer"], ["c_custkey", "c_mktsegment"], [])
    customer = customer[customer.c_mktsegment == "BUILDING"][["c_custkey"]]
    orders = _read(files["orders"], ["o_orderkey", "o_custkey", "o_orderdate",
                                     "o_shippriority"], [])
    orders = orders[orders.o_orderdate < cutoff]
    li = _read(files["lineitem"], ["l_orderkey", "l_extendedprice", "l_discount",
                                   "l_shipdate"], ["l_extendedprice", "l_discount"])
    li = li[li.l_shipdate > cutoff]
    li = li.assign(revenue=li.l_extendedprice * (1 - li.l_discount))
    joined = customer.merge(orders, left_on="c_custkey", right_on="o_custkey")
    joined = joined.merge(li, left_on="o_orderkey", right_on="l_orderkey")
    grouped = joined.groupby(["l_orderkey", "o_orderdate", "o_shippriority"]).revenue.sum()
    top = _compute(grouped).reset_index()
    return top.sort_values(["revenue", "o_orderdate"], ascending=[False, True]).head(10)


def q6(files: dict[str, Sequence[str]]) -> Any:
    money = ["l_quantity", "l_extendedprice", "l_discount"]
    li = _read(files["lineitem"], ["l_shipdate", *money], money)
    li = li[(li.l_shipdate >= dt.date(1994, 1, 1)) & (li.l_shipdate < dt.date(1995, 1, 1))
            & (li.l_discount >= 0.05) & (li.l_discount <= 0.07) & (li.l_quantity < 24)]
    revenue = _compute((li.l_extendedprice * li.l_discount).sum())
    return [revenue]


def programs(files: dict[str, Sequence[str]]) -> dict[int, Callable[[], Any]]:
    return {1: lambda: q1(files), 3: lambda: q3(files), 6: lambda: q6(files)}
