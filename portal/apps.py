from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        import portal.api.schema  # noqa: F401  (registers the OpenAPI auth extension)
        from portal.roles import sync_roles

        # After every migrate, so new models' permissions join their roles.
        post_migrate.connect(sync_roles, dispatch_uid="portal.sync_roles")
