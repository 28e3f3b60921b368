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
        ]


class ImportForm(BootstrapMixin, forms.Form):
    kind = forms.ChoiceField(choices=ImportKind.choices)
    file = forms.FileField(help_text="CSV, UTF-8, with a header row. See the column list below.")
