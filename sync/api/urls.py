from rest_framework.routers import SimpleRouter

from sync.api import views

router = SimpleRouter()
router.register("sync-profiles", views.SyncProfileViewSet)
router.register("sync-templates", views.SyncProfileTemplateViewSet)
router.register("sync-sessions", views.SyncSessionViewSet)
router.register("sync-devices", views.DeviceViewSet)
router.register("sync-contacts", views.ContactViewSet)
router.register("sync-held-deletes", views.HeldDeleteViewSet)

urlpatterns = router.urls
