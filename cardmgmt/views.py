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
    AppletVersionFilterSet,
    CardFilterSet,
    CardProfileFilterSet,
    ImportJobFilterSet,
    InstallationFilterSet,
    OtaJobFilterSet,
    SmscLinkFilterSet,
    SubscriberFilterSet,
)
from cardmgmt.forms import (
    AppletUploadForm,
    CardEditForm,
    CardForm,
    CardProfileForm,
    ImportForm,
    InstallDefaultsForm,
    KeySetForm,
    OtaOperationForm,
    OtaSelectionForm,
    SmscLinkForm,
    SubscriberForm,
)
from cardmgmt.models import (
    Applet,
    AppletVersion,
    Card,
    CardAssignment,
    CardProfile,
    ImportJob,
    Installation,
    KeySet,
    OtaJob,
    SmscLink,
    Subscriber,
)
from cardmgmt.tables import (
    AppletVersionTable,
    CardProfileTable,
    CardTable,
    ImportJobTable,
    InstallationTable,
    OtaJobTable,
    SmscLinkTable,
    SubscriberTable,
)
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


# --- applet catalog -------------------------------------------------------------------------


class AppletVersionListView(ObjectListView):
    permission_required = "cardmgmt.view_appletversion"
    queryset = AppletVersion.objects.select_related("applet").defer("cap_file")
    filterset_class = AppletVersionFilterSet
    table_class = AppletVersionTable
    create_url_name = "cardmgmt:appletversion_add"
    create_permission = "cardmgmt.add_appletversion"
    title = "Applet catalog"


class AppletDetailView(ObjectDetailView):
    permission_required = "cardmgmt.view_applet"
    model = Applet
    template_name = "cardmgmt/applet_detail.html"


class AppletVersionDetailView(ObjectDetailView):
    permission_required = "cardmgmt.view_appletversion"
    queryset = AppletVersion.objects.select_related("applet")
    template_name = "cardmgmt/appletversion_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from cardmgmt import ota, otabridge

        context = super().get_context_data(**kwargs)
        rows = []
        for profile in CardProfile.objects.all():
            try:
                packets, sms = otabridge.sms_count(self.object, profile)
                rows.append((profile, packets, sms, ""))
            except (ota.OtaError, ValueError) as exc:
                rows.append((profile, None, None, str(exc)))
        context["sms_by_profile"] = rows
        context["install_params_hex"] = otabridge.install_params(self.object).encode().hex().upper()
        context["installed_count"] = self.object.installations.filter(state="installed").count()
        return context


class AppletUploadView(ServiceFormView):
    permission_required = "cardmgmt.add_appletversion"
    form_class = AppletUploadForm
    title = "Upload a CAP file"
    success_message = "CAP file uploaded."

    def perform(self, form: AppletUploadForm) -> AppletVersion:
        upload = form.cleaned_data["cap_file"]
        return services.upload_applet_version(
            actor=self.actor,
            applet_name=form.cleaned_data["applet"],
            version=form.cleaned_data["version"],
            cap_bytes=upload.read(),
            cap_name=upload.name,
            description=form.cleaned_data["description"],
        )


class InstallDefaultsEditView(ServiceFormView):
    permission_required = "cardmgmt.change_appletversion"
    form_class = InstallDefaultsForm
    success_message = "Install parameters saved."

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.object = get_object_or_404(
            AppletVersion.objects.select_related("applet"), pk=kwargs["pk"]
        )
        self.title = f"Default install parameters of {self.object}"
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        v = self.object
        return {
            "instance_aid": v.instance_aid,
            "privileges": v.privileges,
            "toolkit_tar": v.toolkit_tar,
            "priority": v.priority,
            "max_timers": v.max_timers,
            "menu_entries": ",".join(f"{p}:{i}" for p, i in v.menu_entries or []),
            "max_menu_text_length": v.max_menu_text_length,
            "max_channels": v.max_channels,
            "min_security_level": v.min_security_level,
            "non_volatile_quota": v.non_volatile_quota,
            "volatile_quota": v.volatile_quota,
        }

    def perform(self, form: InstallDefaultsForm) -> AppletVersion:
        return services.update_install_defaults(
            actor=self.actor, version=self.object, **form.cleaned_data
        )


# --- OTA operations -------------------------------------------------------------------------


class OtaJobListView(ObjectListView):
    permission_required = "cardmgmt.view_otajob"
    queryset = OtaJob.objects.select_related("card", "applet_version__applet")
    filterset_class = OtaJobFilterSet
    table_class = OtaJobTable
    title = "OTA jobs"
    extra_actions = [
        ("Operate on a selection", "cardmgmt:ota_selection", "cardmgmt.run_ota_operation")
    ]


class OtaJobDetailView(ObjectDetailView):
    permission_required = "cardmgmt.view_otajob"
    queryset = OtaJob.objects.select_related("card__subscriber", "applet_version__applet")
    template_name = "cardmgmt/otajob_detail.html"

    def get_template_names(self) -> list[str]:
        if getattr(self.request, "htmx", False):
            return ["cardmgmt/otajob_progress.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        messages = list(self.object.messages.defer("secured_data").order_by("step"))
        confirmed = sum(m.state == "confirmed" for m in messages)
        context["ota_messages"] = messages
        # A polled fragment also carries the Cancel button (swapped out of band), so a job
        # that finishes while the page is open no longer offers it.
        context["oob"] = bool(getattr(self.request, "htmx", False))
        context["percent"] = (
            100
            if self.object.is_finished
            else (int(100 * confirmed / len(messages)) if messages else 0)
        )
        return context


def _may_operate(user, cards: int) -> bool:  # type: ignore[no-untyped-def]
    if cards > 1:
        return user.has_perm("cardmgmt.run_ota_operation")
    return user.has_perm("cardmgmt.operate_single_card") or user.has_perm(
        "cardmgmt.run_ota_operation"
    )


def operation_parameters(card: Card, operation: str) -> dict[str, Any]:
    """What the sync applet operations need from the sync side (record, TAR)."""
    if operation not in ("push_params", "trigger_sync"):
        return {}
    from sync.services import applet_operation_parameters

    return applet_operation_parameters(card=card, operation=operation)


class CardOperateView(ServiceFormView):
    """Run an operation on one card (support and operators)."""

    permission_required = ()
    form_class = OtaOperationForm
    success_message = "Operation queued."

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.object = get_object_or_404(Card.objects.select_related("profile"), pk=kwargs["pk"])
        self.title = f"OTA operation on card {self.object}"
        return super().dispatch(request, *args, **kwargs)

    def has_permission(self) -> bool:
        return _may_operate(self.request.user, 1)

    def perform(self, form: OtaOperationForm) -> OtaJob:
        operation = form.cleaned_data["operation"]
        return services.start_ota_job(
            actor=self.actor,
            card=self.object,
            operation=operation,
            applet_version=form.cleaned_data["applet_version"],
            parameters=operation_parameters(self.object, operation),
            priority=0,
        )


class OtaSelectionView(ServiceFormView):
    """Run an operation on a list of cards (operators); campaigns handle large targets."""

    permission_required = "cardmgmt.run_ota_operation"
    form_class = OtaSelectionForm
    title = "OTA operation on a selection of cards"
    success_message = "Operations queued."

    def perform(self, form: OtaSelectionForm):  # type: ignore[no-untyped-def]
        from django.core.exceptions import ValidationError
        from django.db import transaction
        from django.shortcuts import redirect
        from django.urls import reverse

        cards = {
            c.iccid: c
            for c in Card.objects.select_related("profile").filter(
                iccid__in=form.cleaned_data["iccids"]
            )
        }
        missing = [i for i in form.cleaned_data["iccids"] if i not in cards]
        if missing:
            raise ValidationError({"iccids": f"unknown ICCIDs: {', '.join(missing[:10])}"})
        operation = form.cleaned_data["operation"]
        with transaction.atomic():
            for card in cards.values():
                services.start_ota_job(
                    actor=self.actor,
                    card=card,
                    operation=operation,
                    applet_version=form.cleaned_data["applet_version"],
                    parameters=operation_parameters(card, operation),
                    priority=5,
                )
        return redirect(reverse("cardmgmt:otajob_list") + "?state=queued&state=running")


class OtaJobCancelView(PortalPermissionMixin, DetailView):
    """Who may operate on a card may cancel its jobs (as in the API)."""

    permission_required = ()
    model = OtaJob
    http_method_names = ["post"]

    def has_permission(self) -> bool:
        return _may_operate(self.request.user, 1)

    def post(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        from django.contrib import messages as flash
        from django.shortcuts import redirect

        job = self.get_object()
        services.cancel_ota_job(actor=self.actor, job=job)
        flash.success(request, "Job cancelled.")
        return redirect(job)


class InstallationListView(ObjectListView):
    permission_required = "cardmgmt.view_installation"
    queryset = Installation.objects.select_related("card", "applet_version__applet")
    filterset_class = InstallationFilterSet
    table_class = InstallationTable


class SmscLinkListView(ObjectListView):
    permission_required = "cardmgmt.view_smsclink"
    queryset = SmscLink.objects.all()
    filterset_class = SmscLinkFilterSet
    table_class = SmscLinkTable
    title = "SMSC links"
    create_url_name = "cardmgmt:smsclink_add"
    create_permission = "cardmgmt.add_smsclink"


class SmscLinkDetailView(ObjectDetailView):
    permission_required = "cardmgmt.view_smsclink"
    model = SmscLink
    template_name = "cardmgmt/smsclink_detail.html"


class SmscLinkEditView(ServiceFormView):
    form_class = SmscLinkForm
    success_message = "SMSC link saved. Restart the link process to apply it."

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.object = get_object_or_404(SmscLink, pk=kwargs["pk"]) if "pk" in kwargs else None
        self.permission_required = (
            "cardmgmt.change_smsclink" if self.object else "cardmgmt.add_smsclink"
        )
        self.title = f"Edit SMSC link {self.object}" if self.object else "New SMSC link"
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        if self.object is None:
            return {}
        return {
            f: getattr(self.object, f)
            for f in (
                "name",
                "host",
                "port",
                "system_id",
                "system_type",
                "source_addr",
                "tps",
                "window",
                "enabled",
            )
        }

    def perform(self, form: SmscLinkForm) -> SmscLink:
        data = dict(form.cleaned_data)
        password = data.pop("password")
        return services.save_smsc_link(
            actor=self.actor, link=self.object, password=password, **data
        )
