"""Campaign API: reads need cardmgmt.view_otajob, writes and run actions
cardmgmt.run_campaign (see campaigns/views.py); writes go through the services."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from rest_framework import exceptions, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from campaigns import services
from campaigns.api.serializers import (
    CampaignRunSerializer,
    CampaignSerializer,
    CampaignTargetSerializer,
    PreviewSerializer,
)
from campaigns.filtersets import CampaignFilterSet, CampaignRunFilterSet, CampaignTargetFilterSet
from campaigns.models import Campaign, CampaignRun, CampaignTarget
from campaigns.views import READ_PERMISSION, RUN_PERMISSION
from portal.api.permissions import token_allows
from portal.context import Actor


class CampaignPermission(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return user.has_perm(READ_PERMISSION)
        if not token_allows(request):
            self.message = "This API token is read-only"
            return False
        return user.has_perm(RUN_PERMISSION)


def _drf_error(exc: ValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(exc.message_dict)
    return exceptions.ValidationError({"detail": exc.messages})


class CampaignViewSet(viewsets.ModelViewSet):
    """Campaigns. POST `{id}/start/` runs one now; POST `preview/` is the dry run."""

    queryset = Campaign.objects.prefetch_related("segments", "card_profiles")
    serializer_class = CampaignSerializer
    filterset_class = CampaignFilterSet
    permission_classes = [CampaignPermission]

    def actor(self) -> Actor:
        return Actor.from_request(self.request)

    def _values(self, data: dict) -> dict:
        data = dict(data)
        if "target_list" in data and not data["target_list"]:
            data.pop("target_list")
        return data

    def create(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                campaign = services.create_campaign(
                    actor=self.actor(), **self._values(serializer.validated_data)
                )
        except ValidationError as exc:
            raise _drf_error(exc) from None
        data = self.get_serializer(self.get_queryset().get(pk=campaign.pk)).data
        return Response(data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        instance = self.get_object()
        serializer = self.get_serializer(
            instance, data=request.data, partial=kwargs.pop("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                services.update_campaign(
                    actor=self.actor(), campaign=instance, **self._values(serializer.validated_data)
                )
        except ValidationError as exc:
            raise _drf_error(exc) from None
        return Response(self.get_serializer(self.get_queryset().get(pk=instance.pk)).data)

    def destroy(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            services.delete_campaign(actor=self.actor(), campaign=self.get_object())
        except ValidationError as exc:
            raise _drf_error(exc) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):  # type: ignore[no-untyped-def]
        campaign = self.get_object()
        try:
            run = services.start_run(actor=self.actor(), campaign=campaign)
        except ValidationError as exc:
            raise _drf_error(exc) from None
        return Response(
            CampaignRunSerializer(run, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    @action(detail=False, methods=["post"], serializer_class=CampaignSerializer)
    def preview(self, request):  # type: ignore[no-untyped-def]
        serializer = self.get_serializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        probe = Campaign()
        for name in services.CAMPAIGN_FIELDS:
            if name in values:
                setattr(probe, name, values[name])
        probe._segments = values.get("segments", [])  # type: ignore[attr-defined]
        probe._card_profiles = values.get("card_profiles", [])  # type: ignore[attr-defined]
        try:
            preview = services.preview_targets(probe, target_list=values.get("target_list"))
        except ValidationError as exc:
            raise _drf_error(exc) from None
        return Response(PreviewSerializer({"count": preview.count, "sample": preview.sample}).data)


class CampaignRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs with their counters. POST `{id}/pause/`, `resume/`, `cancel/`, `rerun/`."""

    queryset = CampaignRun.objects.all()
    serializer_class = CampaignRunSerializer
    filterset_class = CampaignRunFilterSet
    permission_classes = [CampaignPermission]

    def _act(self, fn, **kwargs):  # type: ignore[no-untyped-def]
        run = self.get_object()
        try:
            result = fn(actor=Actor.from_request(self.request), **kwargs, run=run)
        except ValidationError as exc:
            raise _drf_error(exc) from None
        return Response(self.get_serializer(result).data)

    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):  # type: ignore[no-untyped-def]
        return self._act(services.pause_run)

    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):  # type: ignore[no-untyped-def]
        return self._act(services.resume_run)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):  # type: ignore[no-untyped-def]
        return self._act(services.cancel_run)

    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):  # type: ignore[no-untyped-def]
        previous = self.get_object()
        try:
            run = services.start_run(
                actor=Actor.from_request(request), campaign=previous.campaign, rerun_of=previous
            )
        except ValidationError as exc:
            raise _drf_error(exc) from None
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)


class CampaignTargetViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Per-target results of one run: /api/campaign-runs/{run}/targets/ (cursor paginated)."""

    serializer_class = CampaignTargetSerializer
    filterset_class = CampaignTargetFilterSet
    permission_classes = [CampaignPermission]
    queryset = CampaignTarget.objects.none()

    def get_queryset(self):  # type: ignore[no-untyped-def]
        run = get_object_or_404(CampaignRun, pk=self.kwargs["run_pk"])
        return CampaignTarget.objects.filter(run=run).select_related("card")
