"""Sync pages. Thin: permission checks, queries for display, services for changes."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.utils.html import format_html
from django.views.generic import DetailView, TemplateView

from cardmgmt.models import Subscriber
from portal import crypto
from portal.generic import ObjectListView, PortalPermissionMixin, ServiceFormView
from sync import services
from sync.filtersets import (
    DeviceFilterSet,
    HeldDeleteFilterSet,
    SyncProfileFilterSet,
    SyncProfileTemplateFilterSet,
    SyncSessionFilterSet,
)
from sync.forms import ProfileCreateForm, ProfileEditForm, TemplateForm
from sync.models import (
    PROFILE_SETTINGS,
    Contact,
    Device,
    HeldDelete,
    SyncProfile,
    SyncProfileTemplate,
    SyncSession,
)
from sync.tables import (
    DeviceTable,
    HeldDeleteTable,
    SyncProfileTable,
    SyncProfileTemplateTable,
    SyncSessionTable,
)


class ProfileListView(ObjectListView):
    permission_required = "sync.view_syncprofile"
    queryset = SyncProfile.objects.select_related("subscriber", "template")
    filterset_class = SyncProfileFilterSet
    table_class = SyncProfileTable
    title = "Sync profiles"
    create_url_name = "sync:profile_add"
    create_permission = "sync.add_syncprofile"
    # The templates have no menu entry of their own: they are reached from here.
    extra_actions = [("Templates", "sync:template_list", "sync.view_syncprofiletemplate")]


# The device secret travels to the next page sealed in the session, then is forgotten.
SECRET_SESSION_KEY = "sync_new_device_secret"
SECRET_DISPLAY_PURPOSE = "sync-secret-display"


def _show_secret_once(request, profile: SyncProfile, secret: str) -> None:  # type: ignore[no-untyped-def]
    sealed = crypto.seal(secret.encode(), SECRET_DISPLAY_PURPOSE).hex()
    request.session[SECRET_SESSION_KEY] = {"profile": profile.pk, "sealed": sealed}


class ProfileDetailView(PortalPermissionMixin, DetailView):
    permission_required = "sync.view_syncprofile"
    queryset = SyncProfile.objects.select_related("subscriber", "template")
    template_name = "sync/profile_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        held = self.request.session.get(SECRET_SESSION_KEY)
        context["new_secret"] = None
        if held and held.get("profile") == self.object.pk:
            del self.request.session[SECRET_SESSION_KEY]
            context["new_secret"] = crypto.unseal(
                bytes.fromhex(held["sealed"]), SECRET_DISPLAY_PURPOSE
            ).decode()
        context["may_change"] = self.request.user.has_perm("sync.change_syncprofile")
        context["may_alert"] = may_alert(self.request.user)
        context["san_sync_types"] = sorted(services.SAN_SYNC_TYPES.items())
        return context


class ProfileCreateView(ServiceFormView):
    permission_required = "sync.add_syncprofile"
    form_class = ProfileCreateForm
    title = "New sync profile"
    success_message = "Sync profile created. Copy the device secret now: it is shown once."

    def perform(self, form: ProfileCreateForm) -> SyncProfile:
        profile, secret = services.create_profile(
            actor=self.actor,
            subscriber=form.cleaned_data["msisdn"],
            template=form.cleaned_data["template"],
            username=form.cleaned_data["username"].strip(),
        )
        _show_secret_once(self.request, profile, secret)
        return profile


class ProfileEditView(ServiceFormView):
    permission_required = "sync.change_syncprofile"
    form_class = ProfileEditForm
    success_message = "Sync profile saved."

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.object = get_object_or_404(SyncProfile, pk=kwargs["pk"])
        self.title = f"Sync profile {self.object.username}"
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        initial = {k: getattr(self.object, k) for k in PROFILE_SETTINGS}
        return {**initial, "template": self.object.template, "overrides": self.object.overrides}

    def perform(self, form: ProfileEditForm) -> SyncProfile:
        ticked = set(form.cleaned_data["overrides"])
        values = form.settings()
        return services.update_profile(
            actor=self.actor,
            profile=self.object,
            overrides={k: v for k, v in values.items() if k in ticked},
            clear=[k for k in PROFILE_SETTINGS if k not in ticked],
            template=form.cleaned_data["template"],
        )


class ProfileResetCredentialsView(PortalPermissionMixin, TemplateView):
    """POST: a new device secret (a new record version), shown once on the profile page."""

    permission_required = "sync.change_syncprofile"

    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        profile = get_object_or_404(SyncProfile, pk=kwargs["pk"])
        secret = services.reset_credentials(actor=self.actor, profile=profile)
        _show_secret_once(request, profile, secret)
        messages.success(request, "New device secret. Copy it now: it is shown once.")
        return redirect(profile)


def may_alert(user) -> bool:  # type: ignore[no-untyped-def]
    """Sending a server alert acts on one subscriber: support may, as operators may."""
    return user.has_perm("cardmgmt.operate_single_card") or user.has_perm(
        "cardmgmt.run_ota_operation"
    )


class ProfileServerAlertView(PortalPermissionMixin, TemplateView):
    """POST: send the handset a Server-Alerted Notification by SMS (for handsets without the
    sync applet); the job that records it is linked in the message."""

    permission_required = ()

    def has_permission(self) -> bool:
        return may_alert(self.request.user)

    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        profile = get_object_or_404(
            SyncProfile.objects.select_related("subscriber"), pk=kwargs["pk"]
        )
        try:
            sync_type = int(request.POST.get("sync_type") or 206)
        except ValueError:
            sync_type = 0
        try:
            job = services.send_server_alert(actor=self.actor, profile=profile, sync_type=sync_type)
        except ValidationError as exc:
            messages.error(request, "Server alert not sent: " + "; ".join(exc.messages))
            return redirect(profile)
        messages.success(
            request,
            format_html(
                'Server alert queued for {} (<a href="{}">job {}</a>).',
                profile.subscriber.msisdn,
                job.get_absolute_url(),
                job.pk,
            ),
        )
        return redirect(profile)


class TemplateListView(ObjectListView):
    permission_required = "sync.view_syncprofiletemplate"
    queryset = SyncProfileTemplate.objects.select_related("segment")
    filterset_class = SyncProfileTemplateFilterSet
    table_class = SyncProfileTemplateTable
    title = "Sync profile templates"
    create_url_name = "sync:template_add"
    create_permission = "sync.add_syncprofiletemplate"


class TemplateDetailView(PortalPermissionMixin, DetailView):
    permission_required = "sync.view_syncprofiletemplate"
    queryset = SyncProfileTemplate.objects.select_related("segment")
    template_name = "sync/template_detail.html"


class TemplateCreateView(ServiceFormView):
    permission_required = "sync.add_syncprofiletemplate"
    form_class = TemplateForm
    title = "New sync profile template"
    success_message = "Template created."

    def perform(self, form: TemplateForm) -> SyncProfileTemplate:
        return services.create_template(
            actor=self.actor,
            name=form.cleaned_data["name"].strip(),
            segment=form.cleaned_data["segment"],
            **form.settings(),
        )


class TemplateEditView(ServiceFormView):
    permission_required = "sync.change_syncprofiletemplate"
    form_class = TemplateForm
    success_message = "Template saved; the profiles following it got the new values."

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.object = get_object_or_404(SyncProfileTemplate, pk=kwargs["pk"])
        self.title = f"Sync profile template {self.object.name}"
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        initial = {k: getattr(self.object, k) for k in PROFILE_SETTINGS}
        return {**initial, "name": self.object.name, "segment": self.object.segment}

    def perform(self, form: TemplateForm) -> SyncProfileTemplate:
        name = form.cleaned_data["name"].strip()
        segment = form.cleaned_data["segment"]
        clash = SyncProfileTemplate.objects.exclude(pk=self.object.pk)
        if clash.filter(name=name).exists():
            raise ValidationError({"name": "a template with this name exists"})
        if segment is not None and clash.filter(segment=segment).exists():
            raise ValidationError({"segment": "this segment already has a template"})
        return services.update_template(
            actor=self.actor, template=self.object, name=name, segment=segment,
            **form.settings(),
        )  # fmt: skip


class SessionListView(ObjectListView):
    permission_required = "sync.view_syncsession"
    queryset = SyncSession.objects.select_related("subscriber").defer("state")
    filterset_class = SyncSessionFilterSet
    table_class = SyncSessionTable
    title = "Sync sessions"


class SessionDetailView(PortalPermissionMixin, DetailView):
    permission_required = "sync.view_syncsession"
    queryset = SyncSession.objects.select_related("subscriber", "device", "profile")
    template_name = "sync/session_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["messages_log"] = self.object.messages.defer("response")
        context["conflicts"] = self.object.conflicts.all()
        # Conflict values are address book contents.
        context["show_values"] = self.request.user.has_perm("sync.view_contact_contents")
        return context


class DeviceListView(ObjectListView):
    permission_required = "sync.view_device"
    queryset = Device.objects.select_related("subscriber")
    filterset_class = DeviceFilterSet
    table_class = DeviceTable
    title = "Devices"


class DeviceDetailView(PortalPermissionMixin, DetailView):
    permission_required = "sync.view_device"
    queryset = Device.objects.select_related("subscriber")
    template_name = "sync/device_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["events"] = self.object.events.all()[:50]
        context["inventory"] = self.object.subscriber.inventory_items.filter(deleted=False)[:200]
        return context


class AddressBookView(PortalPermissionMixin, TemplateView):
    """A subscriber's DB2 address book: counts for everyone allowed, contents only with
    sync.view_contact_contents."""

    permission_required = "sync.view_contact"
    template_name = "sync/addressbook.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        subscriber = get_object_or_404(Subscriber, pk=kwargs["pk"])
        contacts = Contact.objects.filter(subscriber=subscriber)
        context.update(
            subscriber=subscriber,
            counts=contacts.aggregate(
                live=Count("pk", filter=Q(deleted=False)),
                deleted=Count("pk", filter=Q(deleted=True)),
            ),
            show_contents=self.request.user.has_perm("sync.view_contact_contents"),
        )
        if context["show_contents"]:
            context["contacts"] = contacts.filter(deleted=False).order_by("display_name")[:500]
        return context


class HeldDeleteListView(ObjectListView):
    permission_required = "sync.view_helddelete"
    queryset = HeldDelete.objects.select_related("subscriber")
    filterset_class = HeldDeleteFilterSet
    table_class = HeldDeleteTable
    title = "Held mass deletions"


class HeldDeleteDetailView(PortalPermissionMixin, DetailView):
    permission_required = "sync.view_helddelete"
    queryset = HeldDelete.objects.select_related("subscriber", "session")
    template_name = "sync/helddelete_detail.html"


class HeldDeleteDecideView(PortalPermissionMixin, TemplateView):
    """POST decision=approve|reject."""

    permission_required = "sync.change_helddelete"

    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        held = get_object_or_404(HeldDelete, pk=kwargs["pk"])
        decision = request.POST.get("decision")
        service = {"approve": services.approve_held_delete, "reject": services.reject_held_delete}
        if decision not in service:
            messages.error(request, "decision must be approve or reject")
            return redirect(held)
        try:
            service[decision](actor=self.actor, held=held)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Deletions {decision}d.")
        return redirect(held)
