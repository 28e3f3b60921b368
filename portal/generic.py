"""Shared UI views: a filtered, sorted, paginated list that also answers HTMX partial requests.

Lists use django-tables2's LazyPaginator: it never counts the whole table, so a page of a
million-row list costs one indexed query.
"""

from __future__ import annotations

from typing import Any

import django_filters
import django_tables2 as tables
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.views.generic import TemplateView
from django_tables2.paginators import LazyPaginator

from portal.context import Actor


class PortalPermissionMixin(LoginRequiredMixin, PermissionRequiredMixin):
    """Logged-out users go to the login page; logged-in users without the permission get 403."""

    raise_exception = False

    def handle_no_permission(self):  # type: ignore[no-untyped-def]
        self.raise_exception = self.request.user.is_authenticated
        return super().handle_no_permission()

    @property
    def actor(self) -> Actor:
        return Actor.from_request(self.request)


class ObjectListView(PortalPermissionMixin, TemplateView):
    template_name = "generic/object_list.html"
    queryset: QuerySet
    filterset_class: type[django_filters.FilterSet]
    table_class: type[tables.Table]
    title = ""
    create_url_name = ""
    create_permission = ""
    per_page = 25
    extra_actions: list[tuple[str, str, str]] = []  # (label, url name, permission)

    def get_queryset(self) -> QuerySet:
        return self.queryset.all()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        filterset = self.filterset_class(
            self.request.GET or None, queryset=self.get_queryset(), request=self.request
        )
        queryset = (
            filterset.qs
            if filterset.is_bound and filterset.is_valid()
            else (filterset.queryset if not filterset.is_bound else filterset.queryset.none())
        )
        # No `request=` here: it would paginate with Django's counting paginator first.
        table = self.table_class(queryset)
        tables.RequestConfig(
            self.request,
            paginate={"paginator_class": LazyPaginator, "per_page": self.per_page, "silent": True},
        ).configure(table)
        user = self.request.user
        context.update(
            filterset=filterset,
            table=table,
            title=self.title or self.queryset.model._meta.verbose_name_plural.capitalize(),
            create_url_name=self.create_url_name
            if self.create_url_name and user.has_perm(self.create_permission)
            else "",
            extra_actions=[a for a in self.extra_actions if user.has_perm(a[2])],
        )
        return context

    def get_template_names(self) -> list[str]:
        if getattr(self.request, "htmx", False) and not self.request.htmx.boosted:
            return ["generic/object_table.html"]
        return [self.template_name]


def form_errors_from(form, exc: ValidationError) -> None:  # type: ignore[no-untyped-def]
    """Attach a service's ValidationError to a form, by field where it names one."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error)
    else:
        for message in exc.messages:
            form.add_error(None, message)


class ServiceFormView(PortalPermissionMixin, TemplateView):
    """A form whose valid data is handed to a service; service errors become form errors."""

    template_name = "generic/object_edit.html"
    form_class: type
    title = ""
    success_message = "Saved."

    def get_form_kwargs(self) -> dict[str, Any]:
        return {"initial": self.get_initial()}

    def get_initial(self) -> dict[str, Any]:
        return {}

    def get_form(self):  # type: ignore[no-untyped-def]
        kwargs = self.get_form_kwargs()
        if self.request.method == "POST":
            kwargs.update(data=self.request.POST, files=self.request.FILES)
        return self.form_class(**kwargs)

    def perform(self, form):  # type: ignore[no-untyped-def]
        """Call the service; return the object to redirect to (or an HttpResponse)."""
        raise NotImplementedError

    def get(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self.render_to_response(self.get_context_data(form=self.get_form()))

    def post(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        from django.contrib import messages
        from django.http import HttpResponse
        from django.shortcuts import redirect

        form = self.get_form()
        if form.is_valid():
            try:
                # One transaction: a service that refuses half-way leaves nothing behind.
                with transaction.atomic():
                    result = self.perform(form)
            except ValidationError as exc:
                form_errors_from(form, exc)
            else:
                if isinstance(result, HttpResponse):
                    return result
                messages.success(request, self.success_message)
                return redirect(result)
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["title"] = self.title
        return context
