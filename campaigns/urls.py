from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("", views.CampaignListView.as_view(), name="campaign_list"),
    path("add/", views.CampaignFormView.as_view(), name="campaign_add"),
    path("<int:pk>/", views.CampaignDetailView.as_view(), name="campaign_detail"),
    path("<int:pk>/edit/", views.CampaignFormView.as_view(), name="campaign_edit"),
    path("<int:pk>/delete/", views.CampaignDeleteView.as_view(), name="campaign_delete"),
    path("<int:pk>/start/", views.CampaignStartView.as_view(), name="campaign_start"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="run_detail"),
    path("runs/<int:pk>/progress/", views.RunProgressView.as_view(), name="run_progress"),
    path("runs/<int:pk>/pause/", views.RunPauseView.as_view(), name="run_pause"),
    path("runs/<int:pk>/resume/", views.RunResumeView.as_view(), name="run_resume"),
    path("runs/<int:pk>/cancel/", views.RunCancelView.as_view(), name="run_cancel"),
    path("runs/<int:pk>/rerun/", views.RunRerunView.as_view(), name="run_rerun"),
    path("runs/<int:pk>/targets/", views.RunTargetListView.as_view(), name="run_targets"),
    path("runs/<int:pk>/targets.csv", views.RunTargetCsvView.as_view(), name="run_targets_csv"),
]
