"""The workspace store: DuckDB schema, migrations, ingestion and settings."""

from dicomflow_lab.store.db import Database
from dicomflow_lab.store.migrate import migrate, migrations

__all__ = ["Database", "migrate", "migrations"]
