"""Class counts as ``--classes`` reads and every table writes them."""

import pytest

from slcbench.class_counts import format_class_count, parse_class_count, parse_class_spec
from slcbench.errors import SlcbenchError
from slcbench.paper import PAPER_CLASS_GRID


@pytest.mark.parametrize(
    "token, expected",
    [("1", 1), ("1000", 1000), ("2^10", 1024), ("2^18.5", 370727), ("2**14", 16384), ("10^3", 1000), (" 2^16 ", 65536)],
)
def test_parse_class_count(token, expected):
    assert parse_class_count(token) == expected


def test_two_to_the_eighteen_point_five_is_the_papers_floor():
    assert pytest.approx(370727.6, abs=0.1) == 2**18.5
    assert parse_class_count("2^18.5") == 370727 == PAPER_CLASS_GRID[-1]


@pytest.mark.parametrize(
    "bad",
    [
        "0",
        "-3",
        "2^",
        "abc",
        "2^x",
        "1.5",
        "2^40",
        "",
        "²",
        "١٠",
        "2^100000",
        "10^400",
        "9" * 5000,
        "2^" + "9" * 400,
        "9" * 5000 + "^2",
    ],
)
def test_malformed_class_counts_are_errors(bad):
    with pytest.raises(SlcbenchError):
        parse_class_spec(bad)


def test_class_spec_all_sorted_unique_and_always_has_one():
    assert parse_class_spec("all") == (1, 1024, 16384, 65536, 262144, 370727)
    assert parse_class_spec("2^14,1000,2^14") == (1, 1000, 16384)
    assert parse_class_spec("all,5") == (1, 5, 1024, 16384, 65536, 262144, 370727)


def test_format_class_count_round_trips_the_grid():
    assert [format_class_count(k) for k in PAPER_CLASS_GRID] == ["1", "2^10", "2^14", "2^16", "2^18", "2^18.5"]
    assert format_class_count(1000) == "1000"
