"""Helpers shared by the test modules: launchers for zkserver and Apache ZooKeeper, a threaded
TCP proxy, the raw wire protocol and external client drivers. Imported as `support.X`."""
