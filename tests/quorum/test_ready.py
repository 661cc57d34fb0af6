"""Which COMMIT of a batch a leader may write ahead of the rest (`ready.early_commit`): what
each server is sent must stay in order, and nothing may overtake a snapshot being streamed."""

from __future__ import annotations

from zkserver.quorum.messages import Ack, Commit, Ping
from zkserver.quorum.ready import Disconnect, Send, SendSnapshot, early_commit

COMMIT = Commit(0x100000005, 0x100000004, 12345)


def test_the_first_commit_goes_early() -> None:
    first = Send(2, COMMIT)
    assert early_commit((first, Send(3, COMMIT)), streaming=()) is first


def test_messages_to_other_servers_before_it_do_not_hold_it_back() -> None:
    commit = Send(2, COMMIT)
    assert early_commit((Send(3, Ping(4, 4, 99)), SendSnapshot(4, 7), commit), ()) is commit


def test_nothing_overtakes_what_the_same_server_is_sent_first() -> None:
    assert early_commit((Send(2, Ack(5)), Send(2, COMMIT)), ()) is None
    assert early_commit((SendSnapshot(2, 7), Send(2, COMMIT)), ()) is None


def test_not_to_a_server_a_snapshot_streams_to() -> None:
    assert early_commit((Send(2, COMMIT), Send(3, COMMIT)), streaming={2}) is None


def test_a_disconnect_keeps_the_batch_in_its_order() -> None:
    assert early_commit((Disconnect(3), Send(2, COMMIT)), ()) is None


def test_no_commit_nothing_early() -> None:
    assert early_commit((Send(2, Ack(5)),), ()) is None
    assert early_commit((), ()) is None
