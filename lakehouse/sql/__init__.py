"""The Query Interpreter: parse, guard, qualify and plan a tenant's read-only SQL (pure: no I/O).

A query passes through one tree, in order: `parse` (text → one statement), `guard` (refuse
anything but a read-only query over the caller's own tables), `qualify` (columns, stars and
aliases against the `SchemaView`, with problems listed), `typecheck`, then `bind` (every catalog
table rewritten to the caller's tenant) and `plan` (the logical plan the optimizer consumes, in
typed steps: `plan_steps`).
`interpret` runs the whole chain. The catalog is passed in as data (`SchemaView`), never read here.
"""
