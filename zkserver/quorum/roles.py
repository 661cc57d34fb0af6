"""What a server is in an ensemble, and how far each learner has come with its leader.

`Role` travels inside election notifications, so its values are ZooKeeper's server states
(an int on the wire). The stages are the steps of ZAB's discovery and synchronisation; they are
string enums so that what monitoring renders is their name.
"""

from __future__ import annotations

import enum


class Role(enum.IntEnum):
    LOOKING = 0
    FOLLOWING = 1
    LEADING = 2
    OBSERVING = 3


class LearnerStage(enum.StrEnum):
    """The leader's view of one follower or observer."""

    INFO = "info"  # FOLLOWERINFO received; the new epoch is not decided yet
    EPOCH = "epoch"  # LEADERINFO sent; waiting for ACKEPOCH
    SYNCED = "synced"  # DIFF/TRUNC/SNAP and NEWLEADER sent; waiting for its ACK
    ACKED = "acked"  # NEWLEADER acknowledged: the learner is in the broadcast phase


class SyncStage(enum.StrEnum):
    """A learner's own progress with the leader it follows."""

    IDLE = ""  # not a learner (looking or leading)
    INFO = "info"  # FOLLOWERINFO sent; waiting for LEADERINFO
    SYNC = "sync"  # ACKEPOCH sent; taking DIFF/TRUNC/SNAP
    NEWLEADER = "newleader"  # NEWLEADER received; acknowledging once the history is durable
    ACKED = "acked"  # NEWLEADER acknowledged; waiting for UPTODATE
    SERVING = "serving"  # UPTODATE received: applying commits and serving clients
