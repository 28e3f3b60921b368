"""The applet catalog: CAP upload (UI and API), parsed facts, SMS per profile, install defaults."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cardmgmt import ota
from cardmgmt.models import AppletVersion
from cardmgmt.ota import syncapplet
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


def demo_cap(code_size: int = 64) -> bytes:
    return ota.build_demo_cap(syncapplet.PACKAGE_AID, syncapplet.APPLET_AID, (1, 0), code_size)


def test_upload_through_the_ui_shows_aids_and_sms_counts(client, make_user, card_profile):
    client.force_login(make_user("operator"))
    response = client.post(
        "/inventory/applets/upload/",
        {
            "applet": "Sync applet",
            "version": "1.0",
            "cap_file": SimpleUploadedFile("sync.cap", demo_cap(1500)),
        },
    )
    assert response.status_code == 302, response.content[:2000]
    version = AppletVersion.objects.get()
    assert version.package_aid == syncapplet.PACKAGE_AID.hex().upper()
    assert version.applet_aids == [syncapplet.APPLET_AID.hex().upper()]
    assert {c["name"] for c in version.components} >= {"Header", "Directory", "Applet", "Method"}
    page = client.get(version.get_absolute_url())
    text = page.content.decode()
    assert version.package_aid in text
    params = __import__("cardmgmt.otabridge", fromlist=["x"]).profile_params(
        card_profile, algorithm="aes128", kvn=1
    )
    expected = ota.plan(
        __import__("cardmgmt.otabridge", fromlist=["x"]).load_and_install(version), params
    )
    assert expected.sms_count > expected.packet_count >= 3  # a load that needs concatenation
    assert f"<td>{expected.packet_count}</td><td>{expected.sms_count}</td>" in text.replace(
        "\n", ""
    )
    assert AuditEntry.objects.filter(object_type__model="appletversion", action="create").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a zip at all", "not a zip"),
        (b"", "empty"),
    ],
)
def test_bad_cap_files_are_refused_with_a_message(client, make_user, content, message):
    client.force_login(make_user("operator"))
    response = client.post(
        "/inventory/applets/upload/",
        {"applet": "X", "version": "1", "cap_file": SimpleUploadedFile("x.cap", content)},
    )
    assert response.status_code == 400
    assert message in response.content.decode().lower()
    assert not AppletVersion.objects.exists()


def test_cap_without_header_component(client, make_user):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x/javacard/Method.cap", b"\x07\x00\x01\x00")
    client.force_login(make_user("operator"))
    response = client.post(
        "/inventory/applets/upload/",
        {"applet": "X", "version": "1", "cap_file": SimpleUploadedFile("x.cap", buffer.getvalue())},
    )
    assert response.status_code == 400
    assert "header" in response.content.decode().lower()


def test_duplicate_version_is_refused(api_client_for):
    api = api_client_for("operator")
    first = api.post(
        "/api/applet-versions/",
        {"applet": "Sync", "version": "1.0", "cap_file": SimpleUploadedFile("a.cap", demo_cap())},
        format="multipart",
    )
    assert first.status_code == 201, first.content
    again = api.post(
        "/api/applet-versions/",
        {"applet": "Sync", "version": "1.0", "cap_file": SimpleUploadedFile("a.cap", demo_cap())},
        format="multipart",
    )
    assert again.status_code == 400
    assert "already has a version" in again.content.decode()


def test_install_defaults_validated_and_encoded(api_client_for, client, make_user):
    api = api_client_for("operator")
    created = api.post(
        "/api/applet-versions/",
        {"applet": "Sync", "version": "2.0", "cap_file": SimpleUploadedFile("a.cap", demo_cap())},
        format="multipart",
    ).json()
    url = f"/api/applet-versions/{created['id']}/"
    ok = api.patch(
        url, {"toolkit_tar": "53594E", "menu_entries": [[1, 1]], "priority": 2}, format="json"
    )
    assert ok.status_code == 200, ok.content
    version = AppletVersion.objects.get(pk=created["id"])
    encoded = __import__("cardmgmt.otabridge", fromlist=["x"]).install_params(version).encode()
    parsed = ota.parse_install_params(encoded)
    assert parsed.uicc_toolkit.tars == (bytes.fromhex("53594E"),)
    assert parsed.uicc_toolkit.menu_entries == ((1, 1),)
    assert parsed.uicc_toolkit.priority == 2
    bad = api.patch(url, {"menu_entries": [[1, 999]]}, format="json")
    assert bad.status_code == 400
    client.force_login(make_user("support"))
    refused = client.post(f"/inventory/applet-versions/{version.pk}/install-parameters/", {})
    assert refused.status_code == 403
    client.force_login(make_user("operator", username="op2"))
    form = client.post(
        f"/inventory/applet-versions/{version.pk}/install-parameters/",
        {
            "instance_aid": "A0",
            "privileges": "00",
            "toolkit_tar": "53594E",
            "priority": 1,
            "max_timers": 1,
            "menu_entries": "1:x",
            "max_menu_text_length": 16,
            "max_channels": 0,
            "min_security_level": 18,
        },
    )
    assert form.status_code == 400
    text = form.content.decode()
    assert "an AID is 5 to 16 bytes" in text and "position:identifier" in text
