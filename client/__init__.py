"""A Trio-native ZooKeeper client (work in progress: see the [client] issue).

It will share zkserver's codec (`zkserver.proto`) rather than carry a second one.
"""
