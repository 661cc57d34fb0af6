"""The web console: browse and edit the tree, watch it change, see the ensemble.

Served by the AdminServer under `/console` (switched off with `admin.console.enabled=false`).
It is a ZooKeeper client like any other: each login opens its own session to this server's
client port on loopback with the user's credentials, so ACLs apply to the console exactly as
they apply to every client. Pages are rendered on the server; the little JavaScript in
`static/` only switches data views, follows server-sent events and refreshes live regions.
See docs/console.md.
"""
