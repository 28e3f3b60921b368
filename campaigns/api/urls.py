from django.urls import path
from rest_framework.routers import SimpleRouter

from campaigns.api import views

router = SimpleRouter()
router.register("campaigns", views.CampaignViewSet)
router.register("campaign-runs", views.CampaignRunViewSet)

urlpatterns = [
    *router.urls,
    path(
        "campaign-runs/<int:run_pk>/targets/",
        views.CampaignTargetViewSet.as_view({"get": "list"}),
        name="campaigntarget-list",
    ),
]
