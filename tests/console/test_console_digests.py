"""The server page's digest check: members' tree digests compared at one zxid (no browser)."""

from __future__ import annotations

import pytest

from zkserver.console import ensemble
from zkserver.console.digests import DigestBook, parse_hash


def test_hash_replies_as_zookeeper_and_zkserver_print_them() -> None:
    text = "100000080: -8123456789\n100000100: 42\nnot a digest line\n\n"
    assert parse_hash(text) == [(0x100000080, (-8123456789) & (2**64 - 1)),
                                (0x100000100, 42)]
    assert parse_hash("") == []


def test_agree_at_the_newest_common_zxid() -> None:
    book = DigestBook()
    book.record(1, [(5, 50), (9, 90)])
    book.record(2, [(5, 50)])
    book.record(3, [(5, 50), (7, 70)])
    verdict = book.verdict([1, 2, 3])
    assert (verdict.state, verdict.zxid) == ("agree", 5)
    assert "all 3 members agree at zxid 0x5" in verdict.text


def test_the_member_that_differs_is_named() -> None:
    book = DigestBook()
    for sid, digest in ((1, 0xAA), (2, 0xBB), (3, 0xAA)):
        book.record(sid, [(0x200000003, digest)])
    verdict = book.verdict([1, 2, 3])
    assert verdict.state == "differ" and verdict.differing == (2,)
    assert "member 2 has 0xbb" in verdict.text and "most have 0xaa" in verdict.text


def test_two_members_that_differ_are_both_named() -> None:
    book = DigestBook()
    book.record(1, [(3, 1)])
    book.record(2, [(3, 2)])
    verdict = book.verdict([1, 2])
    assert verdict.state == "differ" and verdict.differing == (1, 2)


@pytest.mark.parametrize("reports,expected", [
    ({1: [(5, 1)], 2: [(6, 1)]}, "different zxids"),
    ({1: [(5, 1)], 2: []}, "no digest from member 2"),
    ({1: [(5, 1)]}, "fewer than two members are up"),
])
def test_nothing_to_compare_is_never_agreement(reports: dict, expected: str) -> None:
    book = DigestBook()
    for sid, pairs in reports.items():
        book.record(sid, pairs)
    verdict = book.verdict(reports)
    assert verdict.state == "pending" and expected in verdict.text


def test_the_book_keeps_a_bounded_history() -> None:
    book = DigestBook()
    book.record(1, [(z, z) for z in range(1000)])
    book.record(2, [(3, 3)])
    assert book.verdict([1, 2]).state == "pending"  # zxid 3 was forgotten by then
    book.record(2, [(999, 999)])
    assert book.verdict([1, 2]).zxid == 999


def test_the_verdict_as_the_page_shows_it() -> None:
    book = DigestBook()
    book.record(1, [(0x10, 1)])
    book.record(2, [(0x10, 2)])
    book.record(3, [(0x10, 1)])
    html = ensemble.digest_check(book.verdict([1, 2, 3]))
    assert 'id="digest-check" class="differ" data-zxid="10"' in html
    assert "member 2 has 0x2" in html
    member = ensemble.Member(2, "127.0.0.1:2182", False, True, "follower", 0x10, 0,
                             digests=((0x10, 2),))
    assert ensemble._latest_digest(member) == "0x2 @ 0x10"
