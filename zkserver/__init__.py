"""zkserver: a ZooKeeper-compatible coordination service on Trio."""

__version__ = "0.1.0"
