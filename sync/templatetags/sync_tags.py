from __future__ import annotations

from django import template

register = template.Library()


@register.inclusion_tag("sync/subscriber_panel_body.html", takes_context=True)
def sync_panel(context, subscriber):  # type: ignore[no-untyped-def]
    from sync.models import Contact, Device, HeldDelete, SyncProfile, SyncSession

    perms = context.get("perms")
    return {
        "perms": perms,
        "subscriber": subscriber,
        "profile": SyncProfile.objects.filter(subscriber=subscriber).first(),
        "sessions": list(SyncSession.objects.filter(subscriber=subscriber).defer("state")[:10]),
        "devices": list(Device.objects.filter(subscriber=subscriber)[:5]),
        "contact_count": Contact.objects.filter(subscriber=subscriber, deleted=False).count(),
        "held": HeldDelete.objects.filter(subscriber=subscriber, status="pending").count(),
    }
