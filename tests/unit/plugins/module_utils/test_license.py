"""Offline license verification of the collection (module_utils/license.py).

Each bad license of tests.support.licenses is refused with its reason; licenses are
signed by the session's test vendor key, whose public key is the only trusted one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from ansible_collections.tamyla.tradehub.plugins.module_utils import license as lic
from tradehub_reference_hub.license import add_signature, sign_license

from tests.support.lab import CUSTOMER_ID, TRUSTED_KEY_ID, LicenseSigner, utc
from tests.support.licenses import BAD_LICENSES, DEPLOYMENT, as_bytes

# What the collection says of each bad license.
REASONS = {
    "payload-changed-by-one-byte": "signature does not verify with trusted key tamyla-test-1",
    "unknown-key-id": "not signed by a trusted key (signed by: tamyla-unknown-9; trusted: "
    "tamyla-test-1)",
    "wrong-signature": "signature does not verify with trusted key tamyla-test-1",
    "expired-past-grace": "grace days are over",
    "not-yet-valid": "is not valid before",
    "another-customer": "is for customer 'cust-0099', not 'cust-0042'",
    "hub-not-covered": "does not cover hub",
    "another-deployment": "bound to deployment 'dep-us-2'",
    "truncated": "not valid JSON",
    "not-json": "not valid JSON",
    "empty-file": "the license is empty",
    "unknown-format": "format is 'tradehub-license/9'",
}


def verify(signer: LicenseSigner, raw: bytes, hubs=("content",)) -> list[str]:
    """Every check the hub_license module runs; returns the warnings."""
    keys = lic.load_trusted_keys(str(signer.keys_dir))
    verified = lic.parse(raw, keys)
    return lic.check(verified, CUSTOMER_ID, list(hubs), DEPLOYMENT, lic.now_utc())


@pytest.mark.parametrize("name", sorted(BAD_LICENSES))
def test_bad_license_is_refused_with_its_reason(signer: LicenseSigner, name: str):
    raw = as_bytes(BAD_LICENSES[name](signer))

    with pytest.raises(lic.LicenseError) as refused:
        verify(signer, raw)

    assert REASONS[name] in str(refused.value)


def test_uncovered_hubs_are_all_named(signer: LicenseSigner):
    raw = as_bytes(BAD_LICENSES["hub-not-covered"](signer))

    with pytest.raises(
        lic.LicenseError,
        match=r"does not cover hubs contacts, content \(it covers demand\)",
    ):
        verify(signer, raw, hubs=("content", "contacts", "demand"))


def test_every_bad_license_has_a_reason():
    assert set(REASONS) == set(BAD_LICENSES)


def test_good_license_verifies_and_summarises_without_signatures(signer: LicenseSigner):
    raw = as_bytes(signer.document(signer.payload(deployment_id=DEPLOYMENT)))

    assert verify(signer, raw, hubs=("content", "contacts")) == []

    keys = lic.load_trusted_keys(str(signer.keys_dir))
    summary = lic.parse(raw, keys).summary(lic.now_utc())
    assert summary["customer_id"] == CUSTOMER_ID
    assert summary["key_id"] == TRUSTED_KEY_ID
    assert summary["status"] == "valid"
    assert summary["days_left"] in (364, 365)
    assert summary["coverage"]["content"] == {"edition": "standard", "limits": {}}
    assert "signature" not in repr(summary)


def test_a_second_signature_by_a_trusted_key_verifies(signer: LicenseSigner):
    # Key rotation: signed by a key no longer trusted, then by the current one.
    document = add_signature(
        sign_license(signer.untrusted, "tamyla-retired-0", signer.payload()),
        signer.trusted,
        TRUSTED_KEY_ID,
    )

    assert verify(signer, as_bytes(document)) == []


def test_unbound_license_fits_any_deployment(signer: LicenseSigner):
    keys = lic.load_trusted_keys(str(signer.keys_dir))
    verified = lic.parse(as_bytes(signer.document()), keys)

    assert lic.check(verified, CUSTOMER_ID, ["content"], None, lic.now_utc()) == []


def test_license_within_grace_is_accepted_with_a_warning(signer: LicenseSigner):
    raw = as_bytes(
        signer.document(signer.payload(not_before=utc(-400), expires_at=utc(-3.5)))
    )

    warnings = verify(signer, raw)

    assert len(warnings) == 1
    assert "the hubs stay ready for 10 more grace days" in warnings[0]


@pytest.mark.parametrize(
    ("offset_days", "status", "days_left"),
    [
        (-1, "valid", 1),
        (1, "in_grace", -1),
        (15, "expired", -15),
        (-400, "not_yet_valid", 0),
    ],
)
def test_assess_names_the_time_window(
    signer: LicenseSigner, offset_days: float, status: str, days_left: int
):
    payload: dict[str, Any] = signer.payload(
        not_before="2026-01-01T00:00:00Z",
        expires_at="2026-12-01T00:00:00Z",
        grace_days=14,
    )
    keys = lic.load_trusted_keys(str(signer.keys_dir))
    verified = lic.parse(as_bytes(signer.document(payload)), keys)
    expiry = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    now = expiry + dt.timedelta(days=offset_days, hours=-1)

    state = lic.assess(verified, now)

    assert state["status"] == status
    if status != "not_yet_valid":
        assert state["days_left"] == days_left


def test_a_key_directory_without_keys_is_refused(tmp_path):
    with pytest.raises(lic.LicenseError, match="no trusted keys"):
        lic.load_trusted_keys(str(tmp_path))


def test_a_key_that_is_not_ed25519_is_refused(tmp_path):
    (tmp_path / "odd.pem").write_text(
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    )

    with pytest.raises(lic.LicenseError, match=r"odd\.pem is not a PEM public key"):
        lic.load_trusted_keys(str(tmp_path))


def test_describe_reads_an_unverified_license_for_diffs(signer: LicenseSigner):
    raw = as_bytes(signer.document(signer.payload(license_id="lic-1")))

    assert lic.describe(raw)["license_id"] == "lic-1"
    assert lic.describe(b"{") == {"unreadable": "not a readable license file"}
