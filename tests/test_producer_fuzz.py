"""The producer API under arbitrary input: a clear ValidationError naming the
problem, or a queued message; never another exception, and nothing valid lost."""

from __future__ import annotations

import pytest
from fakes import FakeApp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreams_sms.config import Settings
from dreams_sms.errors import ValidationError
from dreams_sms.producer import Producer

anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.binary(max_size=40),
                     st.text(max_size=60), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
good_number = st.integers(0, 10**7 - 1).map(lambda n: f"05{[0, 3, 4, 5, 6, 8, 9][n % 7]}{n:07d}")
good_text = st.text(min_size=1, max_size=200).filter(
    lambda t: t.strip() and not any(ord(c) < 32 and c not in "\n\r\t" for c in t)
    and not any(0xD800 <= ord(c) <= 0xDFFF for c in t))


@pytest.fixture(scope="module")
def producer(redis_server):
    return Producer(Settings(redis_url=redis_server), app=FakeApp())


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(to=anything, text=anything, sender=anything)
def test_send_refuses_garbage_clearly(producer, to, text, sender):
    try:
        mid = producer.send(to, text, sender)
    except ValidationError as exc:
        assert str(exc)
        return
    assert producer.status(mid).state == "queued"


@SETTINGS
@given(options=st.dictionaries(st.text(max_size=15), anything, max_size=3))
def test_unknown_or_bad_options_name_the_option(producer, options):
    try:
        producer.send("0551234567", "hi", "Dreams", **options)
    except TypeError:
        pass  # Python refuses keyword names that collide with parameters
    except ValidationError as exc:
        assert exc.field in options, (exc.field, options)


@SETTINGS
@given(rows=st.lists(st.one_of(st.tuples(good_number, good_text),
                               st.tuples(anything, anything), anything), max_size=30))
def test_bulk_queues_every_valid_row_and_reports_the_rest_by_index(producer, rows):
    res = producer.send_bulk("Dreams", rows)
    assert res.queued + res.rejected_count == len(rows)
    rejected = {i for i, _ in res.rejected}
    for i, row in enumerate(rows):
        if isinstance(row, tuple) and len(row) == 2 and isinstance(row[0], str) \
                and row[0].startswith("05") and len(row[0]) == 10 and row[0].isdigit() \
                and isinstance(row[1], str) and row[1].strip() and len(row[1]) <= 200:
            try:
                from dreams_sms.provider.validate import check_text, normalize_number

                normalize_number(row[0])
                check_text(row[1])
            except ValidationError:
                continue
            assert i not in rejected, (row, res.rejected)


def test_oversized_and_empty_inputs_are_named(producer):
    with pytest.raises(ValidationError, match="too long"):
        producer.send("0551234567", "x" * 5000, "Dreams")
    with pytest.raises(ValidationError, match="whitespace"):
        producer.send("0551234567", "   ", "Dreams")
    with pytest.raises(ValidationError, match="empty"):
        producer.send("0551234567", "", "Dreams")
    with pytest.raises(ValidationError, match="sender"):
        producer.send("0551234567", "hi", "A" * 40)
    with pytest.raises(ValidationError, match="priority"):
        producer.send("0551234567", "hi", "Dreams", priority="urgent")
    with pytest.raises(ValidationError, match="expires_in"):
        producer.send("0551234567", "hi", "Dreams", expires_in=-5)
    with pytest.raises(ValidationError, match="campaign"):
        producer.send_bulk("Dreams", [], campaign="bad id!")
