"""Sync pages. Thin: permission checks, queries for display, services for changes."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import DetailView, TemplateView

from cardmgmt.models import Subscriber
from portal.generic import ObjectListView, PortalPermissionMixin
from sync import services
from sync.filtersets import (
    DeviceFilterSet,
    HeldDeleteFilterSet,
    SyncProfileFilterSet,
    SyncProfileTemplateFilterSet,
    SyncSessionFilterSet,
)
from sync.models import (
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


class ProfileDetailView(PortalPermissionMixin, DetailView):
    permission_required = "sync.view_syncprofile"
    queryset = SyncProfile.objects.select_related("subscriber", "template")
    template_name = "sync/profile_detail.html"


class TemplateListView(ObjectListView):
    permission_required = "sync.view_syncprofiletemplate"
    queryset = SyncProfileTemplate.objects.select_related("segment")
    filterset_class = SyncProfileTemplateFilterSet
    table_class = SyncProfileTemplateTable
    title = "Sync profile templates"


class TemplateDetailView(PortalPermissionMixin, DetailView):
    permission_required = "sync.view_syncprofiletemplate"
    queryset = SyncProfileTemplate.objects.select_related("segment")
    template_name = "sync/template_detail.html"


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
