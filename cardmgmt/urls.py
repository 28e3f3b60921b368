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
]
