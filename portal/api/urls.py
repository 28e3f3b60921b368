from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from portal.api import views

router = SimpleRouter()
router.register("audit-log", views.AuditEntryViewSet)
router.register("tokens", views.ApiTokenViewSet)

app_name = "api"

urlpatterns = [
    path("", include(router.urls)),
    path("", include("cardmgmt.api.urls")),
    path("", include("sync.api.urls")),
    path("", include("campaigns.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
