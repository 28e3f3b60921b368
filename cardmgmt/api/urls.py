from rest_framework.routers import SimpleRouter

from cardmgmt.api import views

router = SimpleRouter()
router.register("subscribers", views.SubscriberViewSet)
router.register("cards", views.CardViewSet)
router.register("card-profiles", views.CardProfileViewSet)
router.register("imports", views.ImportJobViewSet)

urlpatterns = router.urls
