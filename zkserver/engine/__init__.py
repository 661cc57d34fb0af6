"""The request engine: ZooKeeper's request pipeline as plain objects, with no I/O and no clock.

One module per concept:

* `pipeline`: the `Engine`, which holds the state and routes each frame to the parts below;
* `ordering`: a connection (`Client`), its waiting requests (`Entry`) and the FIFO rule;
* `handshake`: ConnectRequest -> a new session or a resumed one;
* `auth`: addAuth -> the identities a connection holds;
* `reads`: requests answered from the tree, replies encoded by proto/records.py;
* `watching`: checkWatches, removeWatches, addWatch, setWatches;
* `writes`: a write request -> a transaction (`Prep`);
* `commits`: a committed transaction -> the tree, notifications and the writer's reply.

What the engine counts for monitoring lives in server/counters.py.
"""

from zkserver.engine.ordering import Client, Entry
from zkserver.engine.pipeline import Engine

__all__ = ["Client", "Engine", "Entry"]
