"""Sync API. Reads use the shared FilterSets; writes call the services."""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse

from cardmgmt.api.views import ServiceModelViewSet
from portal.context import Actor
from sync import services
from sync.api.serializers import (
    ContactSerializer,
    DeviceSerializer,
    HeldDeleteSerializer,
    ServerAlertSerializer,
    SyncProfileSerializer,
    SyncProfileTemplateSerializer,
    SyncSessionSerializer,
)
from sync.filtersets import (
    DeviceFilterSet,
    HeldDeleteFilterSet,
    SyncProfileFilterSet,
    SyncProfileTemplateFilterSet,
    SyncSessionFilterSet,
)
from sync.models import Contact, Device, HeldDelete, SyncProfile, SyncProfileTemplate, SyncSession


def _drf_error(exc: ValidationError):  # type: ignore[no-untyped-def]
    from rest_framework.exceptions import ValidationError as DRFValidationError

    return DRFValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class SyncProfileTemplateViewSet(ServiceModelViewSet):
    queryset = SyncProfileTemplate.objects.all()
    serializer_class = SyncProfileTemplateSerializer
    filterset_class = SyncProfileTemplateFilterSet
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def perform_service_create(self, data: dict) -> SyncProfileTemplate:
        try:
            return services.create_template(actor=self.actor(), **data)
        except ValidationError as exc:
            raise _drf_error(exc) from None

    def perform_service_update(self, instance: SyncProfileTemplate, data: dict) -> None:
        try:
            services.update_template(actor=self.actor(), template=instance, **data)
        except ValidationError as exc:
            raise _drf_error(exc) from None


class SyncProfileViewSet(ServiceModelViewSet):
    """Create returns the device secret once (`secret`); it is never readable again."""

    queryset = SyncProfile.objects.select_related("subscriber", "template")
    serializer_class = SyncProfileSerializer
    filterset_class = SyncProfileFilterSet
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        subscriber, template = data.pop("subscriber"), data.pop("template", None)
        try:
            with transaction.atomic():
                profile, secret = services.create_profile(
                    actor=self.actor(), subscriber=subscriber, template=template, overrides=data
                )
        except ValidationError as exc:
            raise _drf_error(exc) from None
        body = self.get_serializer(self.get_queryset().get(pk=profile.pk)).data
        return Response({**body, "secret": secret}, status=status.HTTP_201_CREATED)

    def perform_service_update(self, instance: SyncProfile, data: dict) -> None:
        data.pop("subscriber", None)
        template = data.pop("template", ...)
        try:
            services.update_profile(actor=self.actor(), profile=instance, overrides=data,
                                    template=template)  # fmt: skip
        except ValidationError as exc:
            raise _drf_error(exc) from None

    def get_permissions(self):  # type: ignore[no-untyped-def]
        if self.action == "server_alert":
            # Acts on one subscriber: support may, as for single-card OTA operations.
            from cardmgmt.api.views import SingleCardOperationPermission

            return [SingleCardOperationPermission()]
        return super().get_permissions()

    @action(detail=True, methods=["post"], url_path="server-alert")
    def server_alert(self, request, pk=None):  # type: ignore[no-untyped-def]
        """Send the handset a Server-Alerted Notification by SMS: {"sync_type": 206..210}
        (default 206, two-way). 201 with the OTA job that records the SMS."""
        serializer = ServerAlertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = self.get_object()
        try:
            job = services.send_server_alert(
                actor=self.actor(),
                profile=profile,
                sync_type=serializer.validated_data["sync_type"],
            )
        except ValidationError as exc:
            raise _drf_error(exc) from None
        return Response(
            {
                "job": job.pk,
                "job_url": reverse("api:otajob-detail", args=[job.pk], request=request),
                "msisdn": profile.subscriber.msisdn,
                "sync_type": serializer.validated_data["sync_type"],
                "session_id": job.parameters["session_id"],
            },
            status=status.HTTP_201_CREATED,
        )

    @action(detail=True, methods=["post"], url_path="reset-credentials")
    def reset_credentials(self, request, pk=None):  # type: ignore[no-untyped-def]
        secret = services.reset_credentials(actor=self.actor(), profile=self.get_object())
        return Response({"username": self.get_object().username, "secret": secret})


class SyncSessionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = (
        SyncSession.objects.select_related("subscriber")
        .prefetch_related("conflicts")
        .defer("state")
    )
    serializer_class = SyncSessionSerializer
    filterset_class = SyncSessionFilterSet


class DeviceViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Device.objects.select_related("subscriber").prefetch_related("events")
    serializer_class = DeviceSerializer
    filterset_class = DeviceFilterSet


class ContactFilterSet(django_filters.FilterSet):
    subscriber = django_filters.NumberFilter(field_name="subscriber_id")

    class Meta:
        model = Contact
        fields = ["subscriber", "deleted"]


class ContactViewSet(viewsets.ReadOnlyModelViewSet):
    """DB2 contacts: guid, version and state for all readers; contents with
    sync.view_contact_contents."""

    queryset = Contact.objects.select_related("subscriber")
    serializer_class = ContactSerializer
    filterset_class = ContactFilterSet


class HeldDeleteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    required_permission = "sync.change_helddelete"  # approve and reject
    queryset = HeldDelete.objects.select_related("subscriber")
    serializer_class = HeldDeleteSerializer
    filterset_class = HeldDeleteFilterSet

    def _decide(self, request, service):  # type: ignore[no-untyped-def]
        if not request.user.has_perm("sync.change_helddelete"):
            return Response({"detail": "not allowed"}, status=status.HTTP_403_FORBIDDEN)
        try:
            held = service(actor=Actor.from_request(request), held=self.get_object())
        except ValidationError as exc:
            raise _drf_error(exc) from None
        return Response(self.get_serializer(held).data)

    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):  # type: ignore[no-untyped-def]
        return self._decide(request, services.approve_held_delete)

    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):  # type: ignore[no-untyped-def]
        return self._decide(request, services.reject_held_delete)
