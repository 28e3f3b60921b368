"""Campaign forms. They validate shapes; the services validate meaning (and say which field)."""

from __future__ import annotations

from django import forms

from campaigns.choices import WEEKDAYS
from campaigns.models import Campaign
from campaigns.services import CAMPAIGN_FIELDS
from cardmgmt.models import CardProfile, Segment
from portal.widgets import BootstrapMixin

MAX_LIST_BYTES = 64 * 1024 * 1024


class CampaignForm(BootstrapMixin, forms.ModelForm):
    segments = forms.ModelMultipleChoiceField(
        queryset=Segment.objects.all(), required=False, help_text="Any of these segments"
    )
    card_profiles = forms.ModelMultipleChoiceField(
        queryset=CardProfile.objects.all(), required=False
    )
    target_list = forms.FileField(
        required=False,
        help_text="For an uploaded list: one MSISDN (+E.164) or ICCID per line",
    )
    window_weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Window weekdays",
        help_text="None ticked: every day",
    )

    class Meta:
        model = Campaign
        fields = [f for f in CAMPAIGN_FIELDS if f != "window_weekdays"]
        widgets = {
            "start_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "handset_changed_since": forms.DateInput(attrs={"type": "date"}),
            "window_start": forms.TimeInput(attrs={"type": "time"}),
            "window_end": forms.TimeInput(attrs={"type": "time"}),
        }

    field_order = [
        "name",
        "description",
        "action",
        "applet_version",
        "sync_mode",
        "target_kind",
        "target_list",
    ]

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["segments"].initial = list(self.instance.segments.all())
            self.fields["card_profiles"].initial = list(self.instance.card_profiles.all())
            self.fields["window_weekdays"].initial = self.instance.window_weekdays

    def validate_unique(self) -> None:
        """The service checks the name (and says so on the field)."""

    def _post_clean(self) -> None:
        # Model validation happens in the service (clean_campaign), with one set of messages.
        pass

    def clean_target_list(self) -> bytes | None:
        upload = self.cleaned_data.get("target_list")
        if not upload:
            return None
        if upload.size > MAX_LIST_BYTES:
            raise forms.ValidationError("the list is larger than 64 MB")
        return upload.read()

    def service_values(self) -> dict:
        data = dict(self.cleaned_data)
        return {k: v for k, v in data.items() if k in CAMPAIGN_FIELDS} | {
            "segments": list(data.get("segments") or []),
            "card_profiles": list(data.get("card_profiles") or []),
            "target_list": data.get("target_list"),
            "window_weekdays": sorted(data.get("window_weekdays") or []),
        }


class RerunForm(forms.Form):
    """Empty: the run comes from the URL."""
