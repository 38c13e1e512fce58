"""Alembic revisions (a package so that installing Sentinella ships them)."""
