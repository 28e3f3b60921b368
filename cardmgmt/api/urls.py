from rest_framework.routers import SimpleRouter

from cardmgmt.api import views

router = SimpleRouter()
router.register("subscribers", views.SubscriberViewSet)
router.register("cards", views.CardViewSet)
router.register("card-profiles", views.CardProfileViewSet)
router.register("imports", views.ImportJobViewSet)
router.register("applet-versions", views.AppletVersionViewSet)
router.register("ota-jobs", views.OtaJobViewSet)
router.register("installations", views.InstallationViewSet)
router.register("smsc-links", views.SmscLinkViewSet)

urlpatterns = router.urls
