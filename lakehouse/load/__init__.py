"""Bulk loads: Parquet, CSV or NDJSON files become one snapshot of a tenant's table.

`sources` resolves what to read (and refuses what lies outside the load roots); `column_types`
holds the type rules and `columns` applies them to decide the table's columns; `reading`
streams a file in bounded chunks; `convert` turns a part of a file into data files; `loader`
plans, runs the parts and commits them all as one snapshot.
"""
