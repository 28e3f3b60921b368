import pytest

from cardmgmt.validators import check_iccid, check_imsi, check_key, check_msisdn, luhn_check_digit


def test_luhn_digit_of_known_iccid():
    # 8944 1000 0000 0000 000? : digit computed by hand with the E.118 Luhn rule.
    assert luhn_check_digit("7992739871") == 3
    assert check_iccid("89490010000000000" + "1" + str(luhn_check_digit("894900100000000001")))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("8949001000000000012", "Luhn"),
        ("89490010000000000x3", "digits only"),
        ("894900100000000", "19 or 20 digits"),
        ("1249001000000000013", "start with 89"),
    ],
)
def test_bad_iccids(value, message):
    with pytest.raises(ValueError, match=message):
        check_iccid(value)


def test_imsi_length():
    assert check_imsi("262010000000001") == "262010000000001"
    with pytest.raises(ValueError, match="14 or 15 digits"):
        check_imsi("2620100000")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("+49 170 1234567", "+491701234567"), ("0049-170-1234567", "+491701234567")],
)
def test_msisdn_normalised(raw, expected):
    assert check_msisdn(raw) == expected


@pytest.mark.parametrize("raw", ["491701234567", "+0170123", "+49abc", "+1234567890123456"])
def test_bad_msisdn(raw):
    with pytest.raises(ValueError, match=r"E\.164"):
        check_msisdn(raw)


def test_keys_by_algorithm():
    assert len(check_key("00" * 16, "aes128")) == 16
    assert len(check_key("00" * 24, "3des3k")) == 24
    with pytest.raises(ValueError, match="16 bytes for aes128, got 8"):
        check_key("00" * 8, "aes128")
    with pytest.raises(ValueError, match="hexadecimal"):
        check_key("zz" * 16, "aes128")
    with pytest.raises(ValueError, match="unknown key algorithm"):
        check_key("00" * 16, "rot13")
