"""The nemesis's choices: which nodes a fault targets, which links a cut takes, and the
seeded schedule of cuts."""

from __future__ import annotations

from tests.jepsen.nemesis import SilentCut, choose, cut_pairs, cut_schedule


class _FakeCluster:
    def __init__(self, n: int, leader: int | None) -> None:
        self.n = n
        self._leader = leader

    def leader(self) -> int | None:
        return self._leader


def test_targets():
    import random

    rng = random.Random(1)
    five = _FakeCluster(5, 3)
    assert choose(five, "leader", rng) == [3]
    assert 3 not in choose(five, "follower", rng)
    minority = choose(five, "minority", rng)
    assert len(minority) == 2 and 3 not in minority
    majority = choose(five, "majority", rng)
    assert len(set(majority)) == 3 and majority[0] == 3
    assert choose(_FakeCluster(1, 0), "follower", rng) == []  # standalone: nothing to hit
    assert len(choose(_FakeCluster(3, None), "leader", rng)) == 1


def test_cut_shapes():
    import random

    rng = random.Random(3)
    assert cut_pairs("leader", 3, 1, rng) == [(1, 0), (1, 2)]
    (f, a), (f2, b) = cut_pairs("follower", 3, 1, rng)
    assert f == f2 != 1 and {a, b} == {0, 1, 2} - {f}
    link = cut_pairs("link", 3, 1, rng)
    assert len(link) == 1 and link[0][0] == 1
    assert sorted(cut_pairs("bridge", 3, 1, rng)[0]) == [0, 2]
    five = cut_pairs("leader", 5, 4, rng)  # the leader and one more, against three
    side = {i for i, _ in five}
    assert 4 in side and len(side) == 2 and len(five) == 6
    assert len(cut_pairs("link", 3, None, rng)) == 1  # mid-election: a random stand-in


def test_cut_schedule_depends_only_on_the_seed():
    def shape(faults: list[SilentCut]) -> list[tuple[str, float | None, float | None]]:
        return [(f.shape, f.active, f.quiet) for f in faults]

    a, b = cut_schedule(7, 60.0), cut_schedule(7, 60.0)
    assert shape(a) == shape(b) and shape(a) != shape(cut_schedule(8, 60.0))
    assert sum(f.active + f.quiet for f in a) >= 60.0
    assert {f.shape for f in a} <= set(SilentCut.SHAPES)
    assert all(2.0 <= f.active <= 8.0 and 1.0 <= f.quiet <= 4.0 for f in a)
