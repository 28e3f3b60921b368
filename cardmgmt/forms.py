"""Forms of the inventory UI. They validate input; the services do the writing."""

from __future__ import annotations

from django import forms

from cardmgmt.choices import CardStatus, ImportKind, KeyAlgorithm, SubscriberStatus
from cardmgmt.models import Card, CardProfile, Segment
from cardmgmt.validators import check_iccid, check_imsi, check_key, check_msisdn
from portal.widgets import BootstrapMixin


def _checked(check, value: str) -> str:  # type: ignore[no-untyped-def]
    try:
        return check(value)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None


class SubscriberForm(BootstrapMixin, forms.Form):
    msisdn = forms.CharField(
        label="MSISDN", max_length=20, help_text="E.164, for example +491701234567"
    )
    status = forms.ChoiceField(choices=SubscriberStatus.choices, initial=SubscriberStatus.ACTIVE)
    segments = forms.CharField(required=False, help_text="Labels separated by commas")
    iccid = forms.CharField(
        label="Card ICCID",
        required=False,
        max_length=20,
        help_text="Assigning another card records a SIM swap",
    )

    def clean_msisdn(self) -> str:
        return _checked(check_msisdn, self.cleaned_data["msisdn"])

    def clean_segments(self) -> list[str]:
        names = [s.strip() for s in self.cleaned_data["segments"].replace(";", ",").split(",")]
        names = [n for n in names if n]
        field = Segment._meta.get_field("name")
        for name in names:
            for validator in field.validators:
                validator(name)
        return names

    def clean_iccid(self) -> Card | None:
        value = self.cleaned_data["iccid"].strip()
        if not value:
            return None
        value = _checked(check_iccid, value)
        card = Card.objects.filter(iccid=value).first()
        if card is None:
            raise forms.ValidationError("no card with this ICCID")
        return card


class KeySetForm(BootstrapMixin, forms.Form):
    """Keys are write-only: the inputs are never filled back in."""

    kvn = forms.IntegerField(label="KVN", min_value=1, max_value=15)
    algorithm = forms.ChoiceField(choices=KeyAlgorithm.choices)
    kic = forms.CharField(label="KIc", widget=forms.PasswordInput(render_value=False))
    kid = forms.CharField(label="KID", widget=forms.PasswordInput(render_value=False))
    kik = forms.CharField(
        label="KIK", required=False, widget=forms.PasswordInput(render_value=False)
    )

    def clean(self) -> dict:
        data = super().clean()
        algorithm = data.get("algorithm")
        if algorithm:
            for name in ("kic", "kid", "kik"):
                value = data.get(name)
                if value:
                    try:
                        check_key(value, algorithm)
                    except ValueError as exc:
                        self.add_error(name, str(exc))
        return data


class CardForm(BootstrapMixin, forms.Form):
    iccid = forms.CharField(label="ICCID", max_length=20)
    imsi = forms.CharField(label="IMSI", max_length=15)
    profile = forms.ModelChoiceField(queryset=CardProfile.objects.all())
    status = forms.ChoiceField(choices=CardStatus.choices, initial=CardStatus.IN_STOCK)

    def clean_iccid(self) -> str:
        return _checked(check_iccid, self.cleaned_data["iccid"])

    def clean_imsi(self) -> str:
        return _checked(check_imsi, self.cleaned_data["imsi"])


class CardEditForm(BootstrapMixin, forms.Form):
    profile = forms.ModelChoiceField(queryset=CardProfile.objects.all())
    status = forms.ChoiceField(choices=CardStatus.choices)


class CardProfileForm(BootstrapMixin, forms.ModelForm):
    algorithms = forms.MultipleChoiceField(
        choices=KeyAlgorithm.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = CardProfile
        fields = [
            "name",
            "vendor",
            "algorithms",
            "ram_tar",
            "rfm_tar",
            "min_security_level",
            "cmac_length",
            "counter_mode",
            "por_mode",
            "max_load_block",
            "load_descriptor",
            "pipelined",
            "por_timeout",
        ]


class ImportForm(BootstrapMixin, forms.Form):
    kind = forms.ChoiceField(choices=ImportKind.choices)
    file = forms.FileField(help_text="CSV, UTF-8, with a header row. See the column list below.")


class AppletUploadForm(BootstrapMixin, forms.Form):
    applet = forms.CharField(max_length=100, help_text="A new name creates the applet")
    version = forms.CharField(max_length=30)
    description = forms.CharField(max_length=300, required=False)
    cap_file = forms.FileField(label="CAP file")

    def clean_cap_file(self):  # type: ignore[no-untyped-def]
        from cardmgmt.services.catalog import MAX_CAP_BYTES

        upload = self.cleaned_data["cap_file"]
        if upload.size > MAX_CAP_BYTES:
            raise forms.ValidationError(f"a CAP file is at most {MAX_CAP_BYTES} bytes")
        return upload


def _hex_field(label: str, length: int | None = None, required: bool = True) -> forms.CharField:
    return forms.RegexField(
        label=label,
        regex=r"^([0-9A-Fa-f]{2})*$",
        required=required,
        min_length=length * 2 if length else None,
        max_length=length * 2 if length else 32,
        error_messages={"invalid": "hexadecimal, an even number of digits"},
    )


class InstallDefaultsForm(BootstrapMixin, forms.Form):
    instance_aid = _hex_field("Instance AID")
    privileges = _hex_field("Privileges", required=True)
    toolkit_tar = _hex_field("Toolkit TAR", length=3, required=False)
    priority = forms.IntegerField(min_value=0, max_value=255)
    max_timers = forms.IntegerField(min_value=0, max_value=255)
    menu_entries = forms.CharField(
        required=False, help_text="position:identifier pairs separated by commas, e.g. 1:1,2:2"
    )
    max_menu_text_length = forms.IntegerField(min_value=0, max_value=255)
    max_channels = forms.IntegerField(min_value=0, max_value=255)
    min_security_level = forms.IntegerField(
        min_value=0, max_value=255, help_text="Minimum SPI1, e.g. 18 (0x12)"
    )
    non_volatile_quota = forms.IntegerField(min_value=0, max_value=0xFFFF, required=False)
    volatile_quota = forms.IntegerField(min_value=0, max_value=0xFFFF, required=False)

    def clean_instance_aid(self) -> str:
        value = self.cleaned_data["instance_aid"].upper()
        if not 5 <= len(value) // 2 <= 16:
            raise forms.ValidationError("an AID is 5 to 16 bytes")
        return value

    def clean_privileges(self) -> str:
        value = self.cleaned_data["privileges"].upper()
        if len(value) // 2 not in (1, 3):
            raise forms.ValidationError("privileges are 1 or 3 bytes")
        return value

    def clean_toolkit_tar(self) -> str:
        return self.cleaned_data["toolkit_tar"].upper()

    def clean_menu_entries(self) -> list[list[int]]:
        entries = []
        for part in filter(None, (p.strip() for p in self.cleaned_data["menu_entries"].split(","))):
            position, sep, identifier = part.partition(":")
            if not sep or not position.isdigit() or not identifier.isdigit():
                raise forms.ValidationError(f"{part!r}: write position:identifier, e.g. 1:1")
            if int(position) > 255 or int(identifier) > 255:
                raise forms.ValidationError(f"{part!r}: each number is at most 255")
            entries.append([int(position), int(identifier)])
        return entries


class OtaOperationForm(BootstrapMixin, forms.Form):
    operation = forms.ChoiceField(
        choices=[
            ("load_install", "Load and install applet"),
            ("delete", "Delete applet"),
            ("audit", "Audit installations (GET STATUS)"),
            ("push_params", "Push sync parameters"),
            ("trigger_sync", "Trigger a sync"),
        ]
    )
    applet_version = forms.ModelChoiceField(queryset=None, required=False)

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        from cardmgmt.models import AppletVersion

        self.fields["applet_version"].queryset = AppletVersion.objects.select_related("applet")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("operation") in ("load_install", "delete") and not data.get("applet_version"):
            self.add_error("applet_version", "choose the applet version")
        return data


class OtaSelectionForm(OtaOperationForm):
    iccids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        label="ICCIDs",
        help_text="One per line (at most 1,000; use a campaign for more)",
    )

    def clean_iccids(self) -> list[str]:
        from cardmgmt.validators import check_iccid

        lines = [line.strip() for line in self.cleaned_data["iccids"].splitlines() if line.strip()]
        if len(lines) > 1000:
            raise forms.ValidationError("at most 1,000 cards; use a campaign for more")
        errors = []
        for number, line in enumerate(lines, 1):
            try:
                check_iccid(line)
            except ValueError as exc:
                errors.append(f"line {number}: {exc}")
        if errors:
            raise forms.ValidationError(errors[:20])
        return lines


class SmscLinkForm(BootstrapMixin, forms.Form):
    name = forms.SlugField(max_length=50)
    host = forms.CharField(max_length=255, initial="127.0.0.1")
    port = forms.IntegerField(min_value=1, max_value=65535, initial=2775)
    system_id = forms.CharField(max_length=16)
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        max_length=9,
        help_text="Empty keeps the current password",
    )
    system_type = forms.CharField(max_length=13, required=False)
    source_addr = forms.CharField(max_length=21, label="Source address")
    tps = forms.IntegerField(min_value=1, max_value=100000, initial=100, label="TPS")
    window = forms.IntegerField(min_value=1, max_value=1000, initial=32)
    enabled = forms.BooleanField(required=False, initial=True)
