"""The ensemble driver's step (`StepScope`): what a step's inputs made the peer decide is
carried out once, at the end of the outermost step, while the messages it makes are still
held, so that everything one read of a link brought leaves together."""

from __future__ import annotations

import pytest

from zkserver.quorum.node import StepScope
from zkserver.quorum.transport import Links


class Replies:
    """Stands for the client connections' flusher: records when replies would leave."""

    def __init__(self, order: list[str]) -> None:
        self.order = order

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        self.order.append("replies")


def scope(order: list[str]) -> tuple[StepScope, Links]:
    links = Links(1, {}, ("127.0.0.1", 0), lambda sid, msg: None, None, "test")

    def before() -> None:
        order.append("batches" if links.holding() else "batches, messages already gone")

    return StepScope(links, lambda: order.append("log"), Replies(order), before), links


def test_batches_run_once_at_the_end_of_the_outermost_step_before_anything_leaves() -> None:
    order: list[str] = []
    step, links = scope(order)
    with step:
        with step:  # a message of the read: its input only
            pass
        assert order == ["replies", "log"]
        with step:
            pass
        order.clear()
    assert order == ["batches", "replies", "log"]
    assert not links.holding()


def test_a_step_that_failed_carries_out_nothing_but_still_lets_go() -> None:
    order: list[str] = []
    step, links = scope(order)
    with pytest.raises(RuntimeError), step:
        raise RuntimeError("a digest mismatch, say")
    assert order == ["replies", "log"]
    assert not links.holding()
