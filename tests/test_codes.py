import pickle

import pytest

from dreams_sms.errors import ProviderError
from dreams_sms.provider.codes import CODES, ENDPOINTS, Kind, lookup


def test_every_endpoint_has_a_table():
    assert set(CODES) == set(ENDPOINTS)


@pytest.mark.parametrize(
    ("endpoint", "code", "kind"),
    [
        ("sendsms", -113, Kind.BALANCE),
        ("newsender", -113, Kind.CONFLICT),
        ("sendsms", -114, Kind.RETRYABLE),
        ("newsender", -114, Kind.REQUEST),
        ("sendsms_multi", -117, Kind.PER_NUMBER),
        ("senderstatus", -117, Kind.SENDER),
        ("usersender", -117, Kind.SENDER),
        ("Register", -110, Kind.CONFLICT),
        ("chk_user", -110, Kind.ACCOUNT),
        ("sendsms_multi", -123, Kind.SENDER_LIMIT),
        ("sendsms", -124, Kind.ACCOUNT),
    ],
)
def test_same_code_means_different_things_per_endpoint(endpoint, code, kind):
    assert lookup(endpoint, code).kind is kind


def test_provider_error_carries_code_endpoint_description_and_pickles():
    err = ProviderError("sendsms_multi", -122, body="-122")
    got = (err.code, err.endpoint, err.is_per_number, err.retryable)
    assert got == (-122, "sendsms_multi", True, False)
    assert "Number not allowed" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert (again.code, again.endpoint) == (err.code, err.endpoint)
    assert again.description == err.description


def test_unknown_code_is_kept_not_guessed():
    err = ProviderError("sendsms", -999)
    assert err.code == -999 and "Unknown code" in err.description and not err.retryable
