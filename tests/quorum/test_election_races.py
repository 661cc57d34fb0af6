"""Election races that used to cost seconds, replayed message by message on sans-IO peers.

Each test drives three real `Peer`s by hand: the test decides which message is delivered when,
so the interleaving that once left a member waiting (for the next resend, or for initLimit) is
reproduced exactly, and the test shows the member moving on at once.
"""

from __future__ import annotations

from typing import Any

from zkserver.quorum.messages import FollowerInfo, Notification
from zkserver.quorum.peer import Peer
from zkserver.quorum.quorum import Majority
from zkserver.quorum.ready import Disconnect, Send
from zkserver.quorum.roles import Role

FOLLOWING, LEADING, LOOKING = Role.FOLLOWING, Role.LEADING, Role.LOOKING

VOTERS = (1, 2, 3)


def peers() -> dict[int, Peer]:
    return {sid: Peer(sid, Majority(VOTERS)) for sid in VOTERS}


def take(p: Peer) -> list[Any]:
    """What the peer asks to send (or drop) since the last call."""
    return list(p.ready().network)


def sent(actions: list[Any], kind: type, to: int | None = None) -> list[Any]:
    return [a.msg for a in actions
            if isinstance(a, Send) and isinstance(a.msg, kind) and to in (None, a.to)]


def test_a_follower_of_a_non_leader_is_refused_and_joins_the_real_leader():
    """1 decides for 2 while 2 moves on to 3: 2 refuses 1's FOLLOWERINFO (drops the link), and
    1 elects again at once and follows 3, instead of retrying 2 until initLimit runs out."""
    p = peers()
    for s in (1, 2):
        p[s].start(0)
    n1, n2 = sent(take(p[1]), Notification, 2)[0], sent(take(p[2]), Notification, 1)[0]
    p[1].receive(2, n2, 10)  # 1 adopts 2's (better) vote and re-broadcasts it
    p[2].receive(1, n1, 10)
    take(p[2])
    p[2].receive(1, sent(take(p[1]), Notification, 2)[0], 20)  # 2: {1, 2} back 2
    p[1].receive(2, n2, 20)  # 1: {1, 2} back 2 as well
    take(p[1])
    p[1].tick(300)  # 1's finalize wait ends first: it follows 2
    assert p[1].role == FOLLOWING and p[1].leader == 2
    info = sent(take(p[1]), FollowerInfo, 2)[0]
    # Before 2's own wait ends, 3 starts with the best vote; 2 and 3 settle on 3.
    p[3].start(250)
    n3 = sent(take(p[3]), Notification, 2)[0]
    p[2].receive(3, n3, 260)
    p[3].receive(2, sent(take(p[2]), Notification, 3)[0], 270)
    take(p[3])
    p[2].tick(500)
    p[3].tick(500)
    assert (p[2].role, p[2].leader, p[3].role) == (FOLLOWING, 3, LEADING)
    take(p[2])
    take(p[3])
    p[2].receive(1, info, 510)
    assert Disconnect(1) in take(p[2])
    p[1].disconnected(2)  # what the transport reports when 2 drops the link
    assert p[1].role == LOOKING
    for n in sent(take(p[1]), Notification):
        for s in (2, 3):
            if n is not None:
                p[s].receive(1, n, 520)
    for s in (2, 3):
        for answer in sent(take(p[s]), Notification, 1):
            p[1].receive(s, answer, 530)
    assert (p[1].role, p[1].leader) == (FOLLOWING, 3)
    assert sent(take(p[1]), FollowerInfo, 3)


def test_a_worse_vote_in_our_round_is_answered_with_ours():
    """2 starts looking and broadcasts while 1 still follows the dead leader (1 answers as a
    follower), then 1 looks with a worse vote: 2 answers it with the better vote at once, and
    both settle within one finalize wait, not at the next resend."""
    p = peers()
    for s in (1, 2):
        p[s].start(0)
    # 1's first vote is worse than 2's; 2 hears it in the same round.
    n1 = sent(take(p[1]), Notification, 2)[0]
    take(p[2])
    p[2].receive(1, n1, 5)
    reply = sent(take(p[2]), Notification, 1)
    assert reply and reply[0].vote.leader == 2 and reply[0].state == LOOKING
    p[1].receive(2, reply[0], 6)
    p[2].receive(1, sent(take(p[1]), Notification, 2)[0], 7)
    take(p[2])
    for s in (1, 2):
        p[s].tick(300)
    assert (p[1].role, p[1].leader, p[2].role) == (FOLLOWING, 2, LEADING)
