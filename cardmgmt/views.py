"""Inventory pages. Thin: they check permissions, validate forms and call services."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.views.generic import DetailView

from cardmgmt import services
from cardmgmt.filtersets import (
    CardFilterSet,
    CardProfileFilterSet,
    ImportJobFilterSet,
    SubscriberFilterSet,
)
from cardmgmt.forms import (
    CardEditForm,
    CardForm,
    CardProfileForm,
    ImportForm,
    KeySetForm,
    SubscriberForm,
)
from cardmgmt.models import Card, CardAssignment, CardProfile, ImportJob, KeySet, Subscriber
from cardmgmt.tables import CardProfileTable, CardTable, ImportJobTable, SubscriberTable
from portal.generic import ObjectListView, PortalPermissionMixin, ServiceFormView
from portal.models import AuditEntry


def _recent_audit(obj: Any, limit: int = 10) -> list[AuditEntry]:
    content_type = ContentType.objects.get_for_model(obj)
    return list(
        AuditEntry.objects.filter(object_type=content_type, object_id=str(obj.pk)).order_by(
            "-time"
        )[:limit]
    )


class ObjectDetailView(PortalPermissionMixin, DetailView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if self.request.user.has_perm("portal.view_auditentry"):
            context["audit_entries"] = _recent_audit(self.object)
        return context


# --- subscribers ----------------------------------------------------------------------------


class SubscriberListView(ObjectListView):
    permission_required = "cardmgmt.view_subscriber"
    queryset = Subscriber.objects.select_related("card__profile")
    filterset_class = SubscriberFilterSet
    table_class = SubscriberTable
    create_url_name = "cardmgmt:subscriber_add"
    create_permission = "cardmgmt.add_subscriber"
    extra_actions = [("Import", "cardmgmt:import_add", "cardmgmt.add_importjob")]


class SubscriberDetailView(ObjectDetailView):
    permission_required = "cardmgmt.view_subscriber"
    queryset = Subscriber.objects.select_related("card__profile").prefetch_related(
        "segments", Prefetch("assignments", CardAssignment.objects.select_related("card"))
    )
    template_name = "cardmgmt/subscriber_detail.html"


class SubscriberCreateView(ServiceFormView):
    permission_required = "cardmgmt.add_subscriber"
    form_class = SubscriberForm
    title = "New subscriber"
    success_message = "Subscriber created."

    def perform(self, form: SubscriberForm) -> Subscriber:
        data = form.cleaned_data
        return services.create_subscriber(
            actor=self.actor,
            msisdn=data["msisdn"],
            status=data["status"],
            segments=data["segments"],
            card=data["iccid"],
        )


class SubscriberEditView(ServiceFormView):
    permission_required = "cardmgmt.change_subscriber"
    form_class = SubscriberForm
    success_message = "Subscriber saved."

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.object = get_object_or_404(Subscriber.objects.select_related("card"), pk=kwargs["pk"])
        self.title = f"Edit subscriber {self.object}"
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        return {
            "msisdn": self.object.msisdn,
            "status": self.object.status,
            "segments": ", ".join(s.name for s in self.object.segments.all()),
            "iccid": self.object.card.iccid if self.object.card else "",
        }

    def perform(self, form: SubscriberForm) -> Subscriber:
        data = form.cleaned_data
        subscriber = services.update_subscriber(
            actor=self.actor,
            subscriber=self.object,
            msisdn=data["msisdn"],
            status=data["status"],
            segments=data["segments"],
        )
        if data["iccid"] is not None and data["iccid"].pk != subscriber.card_id:
            subscriber = services.assign_card(
                actor=self.actor, subscriber=subscriber, card=data["iccid"]
            )
        return subscriber


# --- cards ----------------------------------------------------------------------------------


class CardListView(ObjectListView):
    permission_required = "cardmgmt.view_card"
    queryset = Card.objects.select_related("profile", "subscriber")
    filterset_class = CardFilterSet
    table_class = CardTable
    create_url_name = "cardmgmt:card_add"
    create_permission = "cardmgmt.add_card"
    extra_actions = [("Import", "cardmgmt:import_add", "cardmgmt.add_importjob")]


class CardDetailView(ObjectDetailView):
    permission_required = "cardmgmt.view_card"
    # Key sets are shown by KVN, algorithm and counter: the sealed keys are never loaded.
    queryset = Card.objects.select_related("profile", "subscriber").prefetch_related(
        Prefetch("keysets", KeySet.objects.only("id", "card_id", "kvn", "algorithm", "counter"))
    )
    template_name = "cardmgmt/card_detail.html"


class CardCreateView(ServiceFormView):
    permission_required = "cardmgmt.add_card"
    form_class = CardForm
    title = "New card"
    success_message = "Card created. Add its key sets next."

    def perform(self, form: CardForm) -> Card:
        return services.create_card(actor=self.actor, **form.cleaned_data)


class CardEditView(ServiceFormView):
    permission_required = "cardmgmt.change_card"
    form_class = CardEditForm
    success_message = "Card saved."

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.object = get_object_or_404(Card, pk=kwargs["pk"])
        self.title = f"Edit card {self.object}"
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        return {"profile": self.object.profile, "status": self.object.status}

    def perform(self, form: CardEditForm) -> Card:
        return services.update_card(actor=self.actor, card=self.object, **form.cleaned_data)


class KeySetEditView(ServiceFormView):
    permission_required = "cardmgmt.change_card"
    form_class = KeySetForm
    success_message = "Key set stored. Keys are sealed and will not be shown again."

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.object = get_object_or_404(Card, pk=kwargs["pk"])
        self.title = f"Set a key set of card {self.object}"
        return super().dispatch(request, *args, **kwargs)

    def perform(self, form: KeySetForm) -> Card:
        data = form.cleaned_data
        services.set_keyset(
            actor=self.actor,
            card=self.object,
            spec=services.KeySetInput(
                kvn=data["kvn"],
                algorithm=data["algorithm"],
                kic=data["kic"],
                kid=data["kid"],
                kik=data["kik"] or "",
            ),
        )
        return self.object


# --- card profiles --------------------------------------------------------------------------


class CardProfileListView(ObjectListView):
    permission_required = "cardmgmt.view_cardprofile"
    queryset = CardProfile.objects.all()
    filterset_class = CardProfileFilterSet
    table_class = CardProfileTable
    create_url_name = "cardmgmt:cardprofile_add"
    create_permission = "cardmgmt.add_cardprofile"


class CardProfileDetailView(ObjectDetailView):
    permission_required = "cardmgmt.view_cardprofile"
    model = CardProfile
    template_name = "cardmgmt/cardprofile_detail.html"


class CardProfileEditView(ServiceFormView):
    """Create (no pk) or edit a card profile."""

    form_class = CardProfileForm
    success_message = "Card profile saved."

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.object = get_object_or_404(CardProfile, pk=kwargs["pk"]) if "pk" in kwargs else None
        self.permission_required = (
            "cardmgmt.change_cardprofile" if self.object else "cardmgmt.add_cardprofile"
        )
        self.title = f"Edit card profile {self.object}" if self.object else "New card profile"
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self) -> dict[str, Any]:
        return {"instance": self.object}

    def perform(self, form: CardProfileForm) -> CardProfile:
        fields = dict(form.cleaned_data.items())
        if self.object is None:
            return services.create_card_profile(actor=self.actor, **fields)
        return services.update_card_profile(actor=self.actor, profile=self.object, **fields)


# --- imports --------------------------------------------------------------------------------


class ImportJobListView(ObjectListView):
    permission_required = "cardmgmt.view_importjob"
    queryset = ImportJob.objects.all()
    filterset_class = ImportJobFilterSet
    table_class = ImportJobTable
    create_url_name = "cardmgmt:import_add"
    create_permission = "cardmgmt.add_importjob"
    title = "Imports"


class ImportCreateView(ServiceFormView):
    permission_required = "cardmgmt.add_importjob"
    form_class = ImportForm
    title = "Import a CSV file"
    template_name = "cardmgmt/import_form.html"
    success_message = "File received."

    def get_initial(self) -> dict[str, Any]:
        return {"kind": self.request.GET.get("kind", "cards")}

    def perform(self, form: ImportForm) -> ImportJob:
        upload = form.cleaned_data["file"]
        job = services.create_import_job(
            actor=self.actor, kind=form.cleaned_data["kind"], upload=upload
        )
        inline = upload.size <= settings.IMPORT_INLINE_MAX_BYTES
        return services.start_import_job(actor=self.actor, job=job, inline=inline)


class ImportJobDetailView(ObjectDetailView):
    permission_required = "cardmgmt.view_importjob"
    model = ImportJob
    template_name = "cardmgmt/importjob_detail.html"

    def get_template_names(self) -> list[str]:
        if getattr(self.request, "htmx", False):
            return ["cardmgmt/importjob_progress.html"]
        return [self.template_name]
