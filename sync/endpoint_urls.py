"""Included at the site root by portal/urls.py: `path("", include("sync.endpoint_urls"))`."""

from django.urls import path

from sync.endpoint import syncml_endpoint

urlpatterns = [path("syncml", syncml_endpoint, name="syncml")]
