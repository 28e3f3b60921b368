"""Campaign pages. Reads need `cardmgmt.view_otajob` (operators, support, auditors,
administrators); creating, changing and running need `cardmgmt.run_campaign` (operators and
administrators). Views call services only."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import DetailView, View

from campaigns import services
from campaigns.charts import outcome_bars, throughput_chart
from campaigns.filtersets import CampaignFilterSet, CampaignTargetFilterSet
from campaigns.forms import CampaignForm
from campaigns.models import Campaign, CampaignRun, CampaignTarget
from campaigns.tables import CampaignRunTable, CampaignTable, CampaignTargetTable
from portal.generic import ObjectListView, PortalPermissionMixin, ServiceFormView, form_errors_from

READ_PERMISSION = "cardmgmt.view_otajob"
RUN_PERMISSION = "cardmgmt.run_campaign"


class CampaignListView(ObjectListView):
    permission_required = READ_PERMISSION
    queryset = Campaign.objects.all()
    filterset_class = CampaignFilterSet
    table_class = CampaignTable
    title = "Campaigns"
    create_url_name = "campaigns:campaign_add"
    create_permission = RUN_PERMISSION


class CampaignDetailView(PortalPermissionMixin, DetailView):
    permission_required = READ_PERMISSION
    model = Campaign
    template_name = "campaigns/campaign_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        runs = self.object.runs.all()[:50]
        context["runs_table"] = CampaignRunTable(runs, orderable=False)
        context["active_run"] = self.object.runs.filter(state__in=("running", "paused")).first()
        context["listed"] = self.object.list_entries.count()
        context["may_run"] = self.request.user.has_perm(RUN_PERMISSION)
        return context


class CampaignFormView(ServiceFormView):
    """Create or edit; the "Dry run" button shows the target's count and a sample instead."""

    permission_required = RUN_PERMISSION
    form_class = CampaignForm
    template_name = "campaigns/campaign_form.html"
    object: Campaign | None = None

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "pk" in kwargs:
            self.object = get_object_or_404(Campaign, pk=kwargs["pk"])
            self.title = f"Edit campaign {self.object}"
        else:
            self.title = "New campaign"
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self) -> dict[str, Any]:
        return {"instance": self.object or Campaign()}

    def post(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "dry_run" not in request.POST:
            return super().post(request, *args, **kwargs)
        form = self.get_form()
        preview = None
        if form.is_valid():
            values = form.service_values()
            probe = Campaign(pk=self.object.pk if self.object else None)
            for name in services.CAMPAIGN_FIELDS:
                setattr(probe, name, values.get(name, getattr(probe, name)))
            probe._segments = values["segments"]  # type: ignore[attr-defined]
            probe._card_profiles = values["card_profiles"]  # type: ignore[attr-defined]
            try:
                if probe.pk is not None and probe.target_kind == "filter":
                    # The saved M2M would win inside filter_subscribers: preview the form's.
                    probe.pk = None
                preview = services.preview_targets(probe, target_list=values["target_list"])
            except ValidationError as exc:
                form_errors_from(form, exc)
        context = self.get_context_data(form=form, preview=preview)
        return self.render_to_response(context, status=200 if preview else 400)

    def perform(self, form: CampaignForm):  # type: ignore[no-untyped-def]
        values = form.service_values()
        if self.object is None:
            return services.create_campaign(actor=self.actor, **values)
        return services.update_campaign(actor=self.actor, campaign=self.object, **values)


class _RunAction(PortalPermissionMixin, View):
    """POST-only actions on a campaign or a run; service refusals become messages."""

    permission_required = RUN_PERMISSION
    http_method_names = ["post"]
    model: type = CampaignRun

    def act(self, obj):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def post(self, request, pk: int):  # type: ignore[no-untyped-def]
        obj = get_object_or_404(self.model, pk=pk)
        try:
            with transaction.atomic():
                target, message = self.act(obj)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(obj)
        messages.success(request, message)
        return redirect(target)


class CampaignStartView(_RunAction):
    model = Campaign

    def act(self, obj):  # type: ignore[no-untyped-def]
        run = services.start_run(actor=self.actor, campaign=obj)
        return run, f"Run {run.number} started."


class CampaignDeleteView(_RunAction):
    model = Campaign

    def act(self, obj):  # type: ignore[no-untyped-def]
        services.delete_campaign(actor=self.actor, campaign=obj)
        return "campaigns:campaign_list", "Campaign deleted."


class RunPauseView(_RunAction):
    def act(self, obj):  # type: ignore[no-untyped-def]
        return services.pause_run(actor=self.actor, run=obj), "Run paused."


class RunResumeView(_RunAction):
    def act(self, obj):  # type: ignore[no-untyped-def]
        return services.resume_run(actor=self.actor, run=obj), "Run resumed."


class RunCancelView(_RunAction):
    def act(self, obj):  # type: ignore[no-untyped-def]
        return services.cancel_run(actor=self.actor, run=obj), "Run cancelled."


class RunRerunView(_RunAction):
    def act(self, obj):  # type: ignore[no-untyped-def]
        run = services.start_run(actor=self.actor, campaign=obj.campaign, rerun_of=obj)
        return run, f"Run {run.number} started for the failed targets of run {obj.number}."


def _progress_context(run: CampaignRun) -> dict[str, Any]:
    return {
        "run": run,
        "throughput_svg": throughput_chart(run.samples or []),
        "outcome_svg": outcome_bars(run.counters or {}),
    }


class RunDetailView(PortalPermissionMixin, DetailView):
    permission_required = READ_PERMISSION
    model = CampaignRun
    queryset = CampaignRun.objects.select_related("campaign", "rerun_of")
    template_name = "campaigns/run_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(_progress_context(self.object))
        context["may_run"] = self.request.user.has_perm(RUN_PERMISSION)
        return context


class RunProgressView(RunDetailView):
    """The HTMX fragment the run page polls every two seconds while the run is active."""

    template_name = "campaigns/run_progress.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # The buttons sit outside the polled fragment: send them along, swapped out of band,
        # so a run that ends or is paused elsewhere no longer offers Pause or Cancel.
        context["oob"] = True
        return context


class RunTargetListView(ObjectListView):
    permission_required = READ_PERMISSION
    filterset_class = CampaignTargetFilterSet
    table_class = CampaignTargetTable
    template_name = "campaigns/target_list.html"
    per_page = 50

    def dispatch(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.run = get_object_or_404(
            CampaignRun.objects.select_related("campaign"), pk=kwargs["pk"]
        )
        self.title = f"Targets of {self.run}"
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return CampaignTarget.objects.filter(run=self.run).select_related("card").order_by("id")

    @property
    def queryset(self):  # type: ignore[no-untyped-def, override]
        return self.get_queryset()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["run"] = self.run
        return context


class _Echo:
    def write(self, value: str) -> str:
        return value


class RunTargetCsvView(PortalPermissionMixin, View):
    """Per-target results as CSV, filtered like the list; streamed in id order (flat memory)."""

    permission_required = READ_PERMISSION

    def get(self, request, pk: int):  # type: ignore[no-untyped-def]
        run = get_object_or_404(CampaignRun, pk=pk)
        filterset = CampaignTargetFilterSet(
            request.GET or None, queryset=CampaignTarget.objects.filter(run=run)
        )
        if filterset.is_bound and not filterset.is_valid():
            return HttpResponse(
                "bad filter: " + "; ".join(f"{k}: {v[0]}" for k, v in filterset.errors.items()),
                status=400,
                content_type="text/plain",
            )
        queryset = filterset.qs.order_by("id").values_list(
            "id", "msisdn", "card__iccid", "state", "job_id", "reason", "updated"
        )
        writer = csv.writer(_Echo())

        def rows():  # type: ignore[no-untyped-def]
            yield writer.writerow(
                ["target", "msisdn", "iccid", "state", "ota_job", "reason", "updated"]
            )
            for row in queryset.iterator(chunk_size=2000):
                yield writer.writerow([*row[:6], row[6].isoformat() if row[6] else ""])

        response = StreamingHttpResponse(rows(), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="campaign-{run.campaign_id}-run-{run.number}.csv"'
        )
        return response
