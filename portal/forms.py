from __future__ import annotations

from django import forms
from django.utils import timezone

from portal.widgets import BootstrapMixin


class ApiTokenForm(BootstrapMixin, forms.Form):
    name = forms.CharField(max_length=100)
    write_enabled = forms.BooleanField(
        required=False, label="Allow writes", help_text="Read-only unless ticked."
    )
    expires = forms.DateTimeField(
        required=False,
        help_text="Empty: never. Format 2027-01-31 00:00",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean_expires(self):  # type: ignore[no-untyped-def]
        value = self.cleaned_data["expires"]
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("expiry must be in the future")
        return value
