from django.urls import path

from sync import views

app_name = "sync"

urlpatterns = [
    path("profiles/", views.ProfileListView.as_view(), name="profile_list"),
    path("profiles/add/", views.ProfileCreateView.as_view(), name="profile_add"),
    path("profiles/<int:pk>/", views.ProfileDetailView.as_view(), name="profile_detail"),
    path("profiles/<int:pk>/edit/", views.ProfileEditView.as_view(), name="profile_edit"),
    path(
        "profiles/<int:pk>/reset-credentials/",
        views.ProfileResetCredentialsView.as_view(),
        name="profile_reset_credentials",
    ),
    path(
        "profiles/<int:pk>/server-alert/",
        views.ProfileServerAlertView.as_view(),
        name="profile_server_alert",
    ),
    path("templates/", views.TemplateListView.as_view(), name="template_list"),
    path("templates/add/", views.TemplateCreateView.as_view(), name="template_add"),
    path("templates/<int:pk>/", views.TemplateDetailView.as_view(), name="template_detail"),
    path("templates/<int:pk>/edit/", views.TemplateEditView.as_view(), name="template_edit"),
    path("sessions/", views.SessionListView.as_view(), name="session_list"),
    path("sessions/<int:pk>/", views.SessionDetailView.as_view(), name="session_detail"),
    path("devices/", views.DeviceListView.as_view(), name="device_list"),
    path("devices/<int:pk>/", views.DeviceDetailView.as_view(), name="device_detail"),
    path("subscribers/<int:pk>/addressbook/", views.AddressBookView.as_view(), name="addressbook"),
    path("held-deletes/", views.HeldDeleteListView.as_view(), name="helddelete_list"),
    path("held-deletes/<int:pk>/", views.HeldDeleteDetailView.as_view(), name="helddelete_detail"),
    path(
        "held-deletes/<int:pk>/decide/",
        views.HeldDeleteDecideView.as_view(),
        name="helddelete_decide",
    ),
]
