"""Developer tools that drive the platform from outside: the SQL fuzzer (tools/sqlfuzz.py)."""
