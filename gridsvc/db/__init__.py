"""Persistence: engine and session factory, declarative base, Alembic migrations."""
