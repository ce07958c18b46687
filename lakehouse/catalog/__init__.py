"""The catalog database (SQLAlchemy Core): SQLite by default, PostgreSQL when shared."""
