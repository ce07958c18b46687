"""Table and field names: ASCII identifiers, no leading '_', `data_id` reserved at the top."""

from __future__ import annotations

from typing import Any

import pytest

from lakehouse.errors import InvalidInput
from lakehouse.schema import NAME_PATTERN, check_field_name, check_table_name

GOOD = ["a", "A", "events", "Events2", "user_profile", "a_", "a__b", "x1_2_3", "data_id_2",
        "x" * 63, "z" + "9" * 62]
BAD = ["", "_x", "_", "__x", "1a", "9", "a-b", "a b", " a", "a ", "a.b", "a[0]", "a/b", "a\n",
       "\na", "x" * 64, "é", "naïve", "名前", "a\u200b", "ａ", "K" + "\u212a", "a\x00", "$a",
       "a;drop", "'a'", '"a"']


@pytest.mark.parametrize("name", GOOD)
def test_good_names(name: str) -> None:
    assert NAME_PATTERN.fullmatch(name)
    assert check_table_name(name) == name
    assert check_field_name(name, f"payload.{name}") == name
    assert check_field_name(name, f"payload.profile.{name}") == name


@pytest.mark.parametrize("name", BAD)
def test_bad_table_names(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_table_name(name)
    assert refused.value.code == "invalid_table_name"
    assert refused.value.http_status == 400
    assert refused.value.details == {"table": name}


@pytest.mark.parametrize("name", BAD)
def test_bad_field_names(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_field_name(name, "payload.profile.x")
    assert refused.value.code == "invalid_field_name"
    assert refused.value.details == {"path": "payload.profile.x", "field": name}


def test_details_echo_only_the_start_of_a_huge_name() -> None:
    huge = "-" * 1_000_000
    with pytest.raises(InvalidInput) as table:
        check_table_name(huge)
    with pytest.raises(InvalidInput) as field:
        check_field_name(huge, "payload.x")
    assert table.value.details["table"] == "-" * 100
    assert field.value.details["field"] == "-" * 100
    assert len(table.value.message) < 200


@pytest.mark.parametrize("name", [None, 1, b"abc", ("a",)])
def test_names_that_are_not_strings(name: Any) -> None:
    with pytest.raises(InvalidInput):
        check_table_name(name)
    with pytest.raises(InvalidInput):
        check_field_name(name, "payload.x")


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("payload.data_id", False), ("data_id", False), ("payload.profile.data_id", True),
     ("payload.items[].data_id", True), ("payload.a.b.data_id", True)],
)
def test_data_id_is_reserved_only_at_the_top(path: str, allowed: bool) -> None:
    if allowed:
        assert check_field_name("data_id", path) == "data_id"
    else:
        with pytest.raises(InvalidInput) as refused:
            check_field_name("data_id", path)
        assert refused.value.code == "invalid_field_name"
        assert refused.value.details == {"path": path, "field": "data_id"}


def test_a_table_may_be_called_data_id() -> None:
    # The reservation protects the record key column; a table name cannot collide with it.
    assert check_table_name("data_id") == "data_id"
