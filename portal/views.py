"""Dashboard, global search, health, the audit log and API tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import DetailView, TemplateView

from cardmgmt.filtersets import subscriber_search
from cardmgmt.models import Card, CardProfile, ImportJob, Subscriber
from cardmgmt.tables import SubscriberTable
from portal import crypto, services
from portal.filtersets import ApiTokenFilterSet, AuditEntryFilterSet
from portal.forms import ApiTokenForm
from portal.generic import ObjectListView, PortalPermissionMixin
from portal.models import ApiToken, AuditEntry
from portal.tables import ApiTokenTable, AuditEntryTable

DASHBOARD_CACHE_SECONDS = 30


class DashboardView(PortalPermissionMixin, TemplateView):
    template_name = "portal/dashboard.html"
    permission_required = "cardmgmt.view_subscriber"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        counts = cache.get("dashboard-counts")
        if counts is None:
            counts = {
                "subscribers": Subscriber.objects.count(),
                "cards": Card.objects.count(),
                "cards_unassigned": Card.objects.filter(subscriber__isnull=True).count(),
                "profiles": CardProfile.objects.count(),
            }
            cache.set("dashboard-counts", counts, DASHBOARD_CACHE_SECONDS)
        context["counts"] = counts
        context["recent_imports"] = ImportJob.objects.all()[:5]
        return context


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Global search: MSISDN, ICCID or IMSI. One hit opens the subscriber or card."""
    if not request.user.has_perm("cardmgmt.view_subscriber"):
        return HttpResponse("You may not search subscribers.", status=403)
    query = request.GET.get("q", "").strip()[:32]
    subscribers = subscriber_search(Subscriber.objects.select_related("card__profile"), query)[:26]
    results = list(subscribers) if query else []
    if len(results) == 1:
        return redirect(results[0])
    if not results and query:
        card = Card.objects.filter(iccid=query).first() or Card.objects.filter(imsi=query).first()
        if card is not None:
            return redirect(card)
    table = SubscriberTable(results[:25], request=request, orderable=False)
    return render(
        request, "portal/search.html", {"query": query, "table": table, "more": len(results) > 25}
    )


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker reachability, for load balancers and monitoring."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        from portal.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {exc.__class__.__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


class AuditEntryListView(ObjectListView):
    permission_required = "portal.view_auditentry"
    queryset = AuditEntry.objects.select_related("object_type")
    filterset_class = AuditEntryFilterSet
    table_class = AuditEntryTable
    title = "Audit log"


class AuditEntryDetailView(PortalPermissionMixin, DetailView):
    permission_required = "portal.view_auditentry"
    queryset = AuditEntry.objects.select_related("object_type", "actor_user", "actor_token")
    template_name = "portal/auditentry_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        before, after = self.object.before or {}, self.object.after or {}
        context["rows"] = [
            (k, before.get(k), after.get(k), before.get(k) != after.get(k))
            for k in sorted(set(before) | set(after))
        ]
        return context


class ApiTokenListView(ObjectListView):
    """Each user manages their own tokens; administrators and auditors see everyone's."""

    permission_required = ()
    queryset = ApiToken.objects.select_related("user")
    filterset_class = ApiTokenFilterSet
    table_class = ApiTokenTable
    title = "API tokens"
    template_name = "portal/token_list.html"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = super().get_queryset()
        if self.request.user.has_perm("portal.view_apitoken"):
            return qs
        return qs.filter(user=self.request.user)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["form"] = kwargs.get("form") or ApiTokenForm()
        sealed = self.request.session.pop("new_token_key", None)
        # Sealed in the session for the one redirect: the session store never holds it in clear.
        context["new_key"] = (
            crypto.unseal(bytes.fromhex(sealed), "token-display").decode() if sealed else None
        )
        return context


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    from portal.context import Actor

    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        view = ApiTokenListView.as_view()
        request.method = "GET"
        response = view(request, form=form)
        response.status_code = 400
        return response
    _token, key = services.create_api_token(
        actor=Actor.from_request(request),
        user=request.user,
        name=form.cleaned_data["name"],
        write_enabled=form.cleaned_data["write_enabled"],
        expires=form.cleaned_data["expires"],
    )
    # Shown once, on the next page, then forgotten.
    request.session["new_token_key"] = crypto.seal(key.encode(), "token-display").hex()
    messages.success(request, "Token created. Copy the key now: it will not be shown again.")
    return redirect("token_list")


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    from portal.context import Actor

    token = get_object_or_404(ApiToken, pk=pk)
    if token.user_id != request.user.pk and not request.user.has_perm("portal.change_apitoken"):
        return HttpResponse("You may not revoke this token.", status=403)
    services.revoke_api_token(actor=Actor.from_request(request), token=token)
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("token_list")
