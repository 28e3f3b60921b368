from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import views

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("search/", views.search, name="search"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("sync.endpoint_urls")),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"
    ),
    path("audit/", views.AuditEntryListView.as_view(), name="audit_list"),
    path("audit/<int:pk>/", views.AuditEntryDetailView.as_view(), name="audit_detail"),
    path("tokens/", views.ApiTokenListView.as_view(), name="token_list"),
    path("tokens/add/", views.token_create, name="token_add"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("inventory/", include("cardmgmt.urls")),
    path("sync/", include("sync.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("api/", include("portal.api.urls")),
    path("admin/", admin.site.urls),
]
