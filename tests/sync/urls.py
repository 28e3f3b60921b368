"""The project URLs plus the SyncML endpoint at the root, as portal/urls.py will include it."""

from django.urls import include, path

from portal.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("", include("sync.endpoint_urls"))]
