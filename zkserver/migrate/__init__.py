"""Migration from Apache ZooKeeper: `zkserver import-zookeeper` (see docs/migration.md)."""

from zkserver.migrate.importer import ImportResult, MigrationError, import_zookeeper
from zkserver.migrate.zkfiles import ZkFileError

__all__ = ["ImportResult", "MigrationError", "ZkFileError", "import_zookeeper"]
