"""Inventory API. Reads use the shared FilterSets; writes call the services."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from cardmgmt import services
from cardmgmt.api.serializers import (
    AppletUploadSerializer,
    AppletVersionSerializer,
    CardProfileSerializer,
    CardSerializer,
    ImportJobSerializer,
    InstallationSerializer,
    OtaJobSerializer,
    SmscLinkSerializer,
    SubscriberSerializer,
)
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
from cardmgmt.models import (
    AppletVersion,
    Card,
    CardAssignment,
    CardProfile,
    ImportJob,
    Installation,
    KeySet,
    OtaJob,
    OtaMessage,
    SmscLink,
    Subscriber,
)
from portal.api.permissions import ActionPermission, token_allows
from portal.context import Actor


class ServiceModelViewSet(viewsets.ModelViewSet):
    """Create, update and delete go through services with the request's actor."""

    def actor(self) -> Actor:
        return Actor.from_request(self.request)

    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            instance = self.perform_service_create(serializer.validated_data)
        instance = self.get_queryset().get(pk=instance.pk)
        return Response(self.get_serializer(instance).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        instance = self.get_object()
        serializer = self.get_serializer(
            instance, data=request.data, partial=kwargs.pop("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            self.perform_service_update(instance, serializer.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=instance.pk)).data)

    def destroy(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.perform_service_delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_service_create(self, data: dict):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def perform_service_update(self, instance, data: dict) -> None:  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def perform_service_delete(self, instance) -> None:  # type: ignore[no-untyped-def]
        raise NotImplementedError


class CardProfileViewSet(ServiceModelViewSet):
    queryset = CardProfile.objects.all()
    serializer_class = CardProfileSerializer
    filterset_class = CardProfileFilterSet

    def perform_service_create(self, data: dict) -> CardProfile:
        return services.create_card_profile(actor=self.actor(), **data)

    def perform_service_update(self, instance: CardProfile, data: dict) -> None:
        services.update_card_profile(actor=self.actor(), profile=instance, **data)

    def perform_service_delete(self, instance: CardProfile) -> None:
        services.delete_card_profile(actor=self.actor(), profile=instance)


class CardViewSet(ServiceModelViewSet):
    queryset = Card.objects.select_related("profile", "subscriber").prefetch_related(
        Prefetch("keysets", KeySet.objects.only("id", "card_id", "kvn", "algorithm", "counter"))
    )
    serializer_class = CardSerializer
    filterset_class = CardFilterSet
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def perform_service_create(self, data: dict) -> Card:
        keysets = [services.KeySetInput(**k) for k in data.pop("keysets", [])]
        return services.create_card(actor=self.actor(), keysets=keysets, **data)

    def perform_service_update(self, instance: Card, data: dict) -> None:
        keysets = data.pop("keysets", [])
        data.pop("iccid", None)
        services.update_card(actor=self.actor(), card=instance, **data)
        for k in keysets:
            services.set_keyset(actor=self.actor(), card=instance, spec=services.KeySetInput(**k))


class SubscriberViewSet(ServiceModelViewSet):
    queryset = Subscriber.objects.select_related("card").prefetch_related(
        "segments", Prefetch("assignments", CardAssignment.objects.select_related("card"))
    )
    serializer_class = SubscriberSerializer
    filterset_class = SubscriberFilterSet

    def perform_service_create(self, data: dict) -> Subscriber:
        card = data.pop("iccid", None)
        return services.create_subscriber(actor=self.actor(), card=card, **data)

    def perform_service_update(self, instance: Subscriber, data: dict) -> None:
        card = data.pop("iccid", None)
        segments = data.pop("segments", None)
        subscriber = services.update_subscriber(
            actor=self.actor(), subscriber=instance, segments=segments, **data
        )
        if card is not None and card.pk != subscriber.card_id:
            services.assign_card(actor=self.actor(), subscriber=subscriber, card=card)

    def perform_service_delete(self, instance: Subscriber) -> None:
        services.delete_subscriber(actor=self.actor(), subscriber=instance)


class ImportJobViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Upload a CSV (multipart `kind` + `file`). Small files are imported at once (201);
    larger ones are queued (202) and the job shows progress."""

    queryset = ImportJob.objects.all()
    serializer_class = ImportJobSerializer
    filterset_class = ImportJobFilterSet

    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        actor = Actor.from_request(request)
        upload = serializer.validated_data["file"]
        inline = upload.size <= settings.IMPORT_INLINE_MAX_BYTES
        with transaction.atomic():
            job = services.create_import_job(
                actor=actor, kind=serializer.validated_data["kind"], upload=upload
            )
            job = services.start_import_job(actor=actor, job=job, inline=inline)
        job.refresh_from_db()
        data = self.get_serializer(job).data
        if not inline:
            return Response(data, status=status.HTTP_202_ACCEPTED)
        return Response(
            data,
            status=status.HTTP_201_CREATED if job.status == "done" else status.HTTP_400_BAD_REQUEST,
        )


class AppletVersionViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """The applet catalog. POST (multipart `applet`, `version`, `cap_file`) uploads a CAP;
    PATCH changes the default install parameters."""

    queryset = AppletVersion.objects.select_related("applet").defer("cap_file")
    serializer_class = AppletVersionSerializer
    filterset_class = AppletVersionFilterSet

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return AppletUploadSerializer if self.action == "create" else AppletVersionSerializer

    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        serializer = AppletUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = services.upload_applet_version(
            actor=Actor.from_request(request),
            applet_name=data["applet"],
            version=data["version"],
            cap_bytes=data["cap_file"].read(),
            cap_name=data["cap_file"].name,
            description=data.get("description", ""),
        )
        return Response(
            AppletVersionSerializer(version, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    def update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        instance = self.get_object()
        serializer = AppletVersionSerializer(
            instance, data=request.data, partial=True, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        services.update_install_defaults(
            actor=Actor.from_request(request), version=instance, **serializer.validated_data
        )
        instance.refresh_from_db()
        return Response(
            AppletVersionSerializer(instance, context=self.get_serializer_context()).data
        )


class OtaJobViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """OTA operations on one card: POST {"iccid", "operation", "applet_version"}.
    Support may operate on single cards; `POST .../cancel/` stops a job."""

    queryset = OtaJob.objects.select_related("card", "applet_version").prefetch_related(
        Prefetch("messages", OtaMessage.objects.defer("secured_data"))
    )
    serializer_class = OtaJobSerializer
    filterset_class = OtaJobFilterSet

    def get_permissions(self):  # type: ignore[no-untyped-def]
        if self.action in ("create", "cancel"):
            return [SingleCardOperationPermission()]
        return super().get_permissions()

    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        from cardmgmt.views import operation_parameters

        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        card = data["iccid"]
        with transaction.atomic():
            job = services.start_ota_job(
                actor=Actor.from_request(request),
                card=card,
                operation=data["operation"],
                applet_version=data.get("applet_version"),
                parameters=operation_parameters(card, data["operation"]),
            )
        return Response(
            self.get_serializer(self.get_queryset().get(pk=job.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):  # type: ignore[no-untyped-def]
        job = services.cancel_ota_job(actor=Actor.from_request(request), job=self.get_object())
        return Response(self.get_serializer(self.get_queryset().get(pk=job.pk)).data)


class SingleCardOperationPermission(ActionPermission):
    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if not (request.user and request.user.is_authenticated):
            return False
        if not token_allows(request):
            self.message = "This API token is read-only"
            return False
        return request.user.has_perm("cardmgmt.operate_single_card") or request.user.has_perm(
            "cardmgmt.run_ota_operation"
        )


class InstallationViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Installation.objects.select_related("card", "applet_version__applet")
    serializer_class = InstallationSerializer
    filterset_class = InstallationFilterSet


class SmscLinkViewSet(ServiceModelViewSet):
    queryset = SmscLink.objects.all()
    serializer_class = SmscLinkSerializer
    filterset_class = SmscLinkFilterSet
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def perform_service_create(self, data: dict) -> SmscLink:
        return services.save_smsc_link(actor=self.actor(), **data)

    def perform_service_update(self, instance: SmscLink, data: dict) -> None:
        services.save_smsc_link(actor=self.actor(), link=instance, **data)
