"""Dead letters are grouped as error trackers group them (``jobs.engine.fingerprint``): what
varies between occurrences of one bug is left out of the group, what tells bugs apart is
kept."""

from __future__ import annotations

import pytest

from jobs.engine.fingerprint import error_shape, fingerprint, split_error


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("KeyError: 'user-41'", "KeyError: 'user-7'"),
        ('ValueError: no row "a b"', "ValueError: no row 'c'"),
        ("TimeoutError: took 12.5s after 3 tries", "TimeoutError: took 0.2s after 10 tries"),
        (
            "LookupError: job 4f1c2a3e-1111-2222-3333-444455556666 missing",
            "LookupError: job 00000000-aaaa-bbbb-cccc-dddddddddddd missing",
        ),
        ("OSError: cannot open /var/data/a/1.csv", "OSError: cannot open /tmp/other.txt"),
        ("RuntimeError: object at 0x7fa3b2c0", "RuntimeError: object at 0x55d1"),
        (
            "IntegrityError: sha deadbeef12345678 taken",
            "IntegrityError: sha 0123456789abcdef taken",
        ),
        (
            "ConnectionError: http://127.0.0.1:8080/a refused",
            "ConnectionError: https://h/b refused",
        ),
        ("timed out after 30s", "timed out after 3600s"),
        ("ValueError: boom\n  more lines", "ValueError: boom"),
    ],
)
def test_occurrences_of_one_error_share_a_group(one: str, other: str) -> None:
    assert error_shape(one) == error_shape(other)
    assert fingerprint("noop", one) == fingerprint("noop", other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("KeyError: 'x'", "ValueError: 'x'"),
        ("ValueError: bad input", "ValueError: bad output"),
        ("timed out after 30s", "worker lost"),
    ],
)
def test_different_errors_are_different_groups(one: str, other: str) -> None:
    assert fingerprint("noop", one) != fingerprint("noop", other)


def test_the_job_type_is_part_of_the_group() -> None:
    assert fingerprint("send_email", "ValueError: x") != fingerprint("data_export", "ValueError: x")


def test_the_class_is_read_before_the_first_colon_and_a_platform_message_has_none() -> None:
    assert split_error("pkg.mod.CustomError: a: b") == ("pkg.mod.CustomError", "a: b")
    assert split_error("timed out after 30s") == ("", "timed out after 30s")
    assert error_shape("KeyError: 'user-41'") == "KeyError: <str>"
