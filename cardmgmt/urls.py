from django.urls import path

from cardmgmt import views

app_name = "cardmgmt"

urlpatterns = [
    path("subscribers/", views.SubscriberListView.as_view(), name="subscriber_list"),
    path("subscribers/add/", views.SubscriberCreateView.as_view(), name="subscriber_add"),
    path("subscribers/<int:pk>/", views.SubscriberDetailView.as_view(), name="subscriber_detail"),
    path("subscribers/<int:pk>/edit/", views.SubscriberEditView.as_view(), name="subscriber_edit"),
    path("cards/", views.CardListView.as_view(), name="card_list"),
    path("cards/add/", views.CardCreateView.as_view(), name="card_add"),
    path("cards/<int:pk>/", views.CardDetailView.as_view(), name="card_detail"),
    path("cards/<int:pk>/edit/", views.CardEditView.as_view(), name="card_edit"),
    path("cards/<int:pk>/keys/", views.KeySetEditView.as_view(), name="card_keyset"),
    path("card-profiles/", views.CardProfileListView.as_view(), name="cardprofile_list"),
    path("card-profiles/add/", views.CardProfileEditView.as_view(), name="cardprofile_add"),
    path(
        "card-profiles/<int:pk>/", views.CardProfileDetailView.as_view(), name="cardprofile_detail"
    ),
    path(
        "card-profiles/<int:pk>/edit/", views.CardProfileEditView.as_view(), name="cardprofile_edit"
    ),
    path("imports/", views.ImportJobListView.as_view(), name="importjob_list"),
    path("imports/add/", views.ImportCreateView.as_view(), name="import_add"),
    path("imports/<int:pk>/", views.ImportJobDetailView.as_view(), name="importjob_detail"),
    path("applets/", views.AppletVersionListView.as_view(), name="appletversion_list"),
    path("applets/upload/", views.AppletUploadView.as_view(), name="appletversion_add"),
    path("applets/<int:pk>/", views.AppletDetailView.as_view(), name="applet_detail"),
    path(
        "applet-versions/<int:pk>/",
        views.AppletVersionDetailView.as_view(),
        name="appletversion_detail",
    ),
    path(
        "applet-versions/<int:pk>/install-parameters/",
        views.InstallDefaultsEditView.as_view(),
        name="appletversion_edit",
    ),
    path("installations/", views.InstallationListView.as_view(), name="installation_list"),
    path("cards/<int:pk>/operate/", views.CardOperateView.as_view(), name="card_operate"),
    path("ota/", views.OtaJobListView.as_view(), name="otajob_list"),
    path("ota/selection/", views.OtaSelectionView.as_view(), name="ota_selection"),
    path("ota/<int:pk>/", views.OtaJobDetailView.as_view(), name="otajob_detail"),
    path("ota/<int:pk>/cancel/", views.OtaJobCancelView.as_view(), name="otajob_cancel"),
    path("smsc-links/", views.SmscLinkListView.as_view(), name="smsclink_list"),
    path("smsc-links/add/", views.SmscLinkEditView.as_view(), name="smsclink_add"),
    path("smsc-links/<int:pk>/", views.SmscLinkDetailView.as_view(), name="smsclink_detail"),
    path("smsc-links/<int:pk>/edit/", views.SmscLinkEditView.as_view(), name="smsclink_edit"),
]
