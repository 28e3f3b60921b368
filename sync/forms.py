"""Forms of the sync UI. They validate input; the services (sync.services) do the writing."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from cardmgmt.models import Segment, Subscriber
from portal.widgets import BootstrapMixin
from sync.choices import ConflictPolicy
from sync.models import PROFILE_SETTINGS, SyncProfileTemplate, default_datastores


class DatastoresField(forms.CharField):
    """The datastore list as JSON text; the service checks each entry."""

    widget = forms.Textarea(attrs={"rows": 6})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return json.dumps(value, indent=1)
        return value

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from None
        if not isinstance(data, list):
            raise forms.ValidationError("a JSON list of datastores")
        return data


class SettingsFields(BootstrapMixin, forms.Form):
    """The profile settings (PROFILE_SETTINGS) a template provides or a profile overrides."""

    server_url = forms.URLField(label="Sync server URL", max_length=200, assume_scheme="https")
    datastores = DatastoresField(
        help_text='JSON: [{"local_name", "remote_uri", "content_type", "mode": 200..210}]'
    )
    interval_minutes = forms.IntegerField(min_value=0, max_value=0xFFFFFFFF, initial=1440)
    trigger_ota = forms.BooleanField(label="OTA trigger", required=False, initial=True)
    trigger_timer = forms.BooleanField(label="Timer", required=False, initial=True)
    trigger_imei_change = forms.BooleanField(label="IMEI change", required=False, initial=True)
    trigger_menu = forms.BooleanField(label="Menu entry", required=False, initial=True)
    conflict_policy = forms.ChoiceField(
        choices=ConflictPolicy.choices, initial=ConflictPolicy.MERGE
    )

    def settings(self) -> dict[str, Any]:
        return {k: self.cleaned_data[k] for k in PROFILE_SETTINGS}


class TemplateForm(SettingsFields):
    name = forms.CharField(max_length=100)
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.order_by("name"),
        required=False,
        help_text="Empty: the default template for subscribers of no templated segment",
    )
    field_order = ["name", "segment", *PROFILE_SETTINGS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["datastores"].initial = default_datastores()


class ProfileCreateForm(BootstrapMixin, forms.Form):
    msisdn = forms.CharField(label="Subscriber MSISDN", max_length=20)
    template = forms.ModelChoiceField(
        queryset=SyncProfileTemplate.objects.order_by("name"),
        required=False,
        help_text="Empty: the template of the subscriber's segment, else the default template",
    )
    username = forms.CharField(
        label="Device user name",
        max_length=64,
        required=False,
        help_text="Empty: sub<MSISDN digits>",
    )

    def clean_msisdn(self) -> Subscriber:
        msisdn = self.cleaned_data["msisdn"].strip()
        subscriber = Subscriber.objects.filter(msisdn=msisdn).first()
        if subscriber is None:
            raise forms.ValidationError("no subscriber with this MSISDN")
        return subscriber


class ProfileEditForm(SettingsFields):
    """The profile's settings; those ticked in `overrides` are the subscriber's own, the others
    follow the template."""

    template = forms.ModelChoiceField(
        queryset=SyncProfileTemplate.objects.order_by("name"), required=False
    )
    overrides = forms.MultipleChoiceField(
        choices=[(k, k.replace("_", " ")) for k in PROFILE_SETTINGS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Settings set for this subscriber; unticked ones take the template's value",
    )
    field_order = ["template", "overrides", *PROFILE_SETTINGS]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("template") and set(data.get("overrides") or []) != set(PROFILE_SETTINGS):
            # Without a template every setting is the subscriber's own.
            data["overrides"] = list(PROFILE_SETTINGS)
        return data
