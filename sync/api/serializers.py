"""API representations. Device secrets are never serialised; contact contents only with
sync.view_contact_contents."""

from __future__ import annotations

from rest_framework import serializers

from sync.choices import ConflictPolicy
from sync.models import (
    Contact,
    Device,
    DeviceEvent,
    HeldDelete,
    SyncConflict,
    SyncProfile,
    SyncProfileTemplate,
    SyncSession,
)

SETTINGS = ["server_url", "datastores", "interval_minutes", "trigger_ota", "trigger_timer",
            "trigger_imei_change", "trigger_menu", "conflict_policy"]  # fmt: skip


class SyncProfileTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncProfileTemplate
        fields = ["id", "name", "segment", *SETTINGS, "created", "updated"]
        read_only_fields = ["created", "updated"]


class SyncProfileSerializer(serializers.ModelSerializer):
    subscriber = serializers.SlugRelatedField(
        slug_field="msisdn",
        queryset=SyncProfile._meta.get_field("subscriber").related_model.objects.all(),
    )
    card_is_current = serializers.BooleanField(read_only=True)
    conflict_policy = serializers.ChoiceField(choices=ConflictPolicy.choices, required=False)

    class Meta:
        model = SyncProfile
        fields = ["id", "subscriber", "template", "username", *SETTINGS, "overrides", "version",
                  "card_version", "card_is_current", "created", "updated"]  # fmt: skip
        read_only_fields = [
            "username",
            "overrides",
            "version",
            "card_version",
            "created",
            "updated",
        ]
        extra_kwargs = {k: {"required": False} for k in SETTINGS}


class DeviceEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeviceEvent
        fields = ["time", "kind", "previous_imei", "changes"]


class DeviceSerializer(serializers.ModelSerializer):
    subscriber = serializers.SlugRelatedField(slug_field="msisdn", read_only=True)
    events = DeviceEventSerializer(many=True, read_only=True)

    class Meta:
        model = Device
        fields = ["id", "subscriber", "dev_id", "imei", "manufacturer", "model", "oem",
                  "firmware_version", "software_version", "hardware_version", "device_type",
                  "language", "datastores", "vcard_properties", "current", "first_seen",
                  "last_seen", "events"]  # fmt: skip


class SyncConflictSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncConflict
        fields = ["datastore", "guid", "field", "resolution"]


class SyncSessionSerializer(serializers.ModelSerializer):
    subscriber = serializers.SlugRelatedField(slug_field="msisdn", read_only=True)
    conflicts = SyncConflictSerializer(many=True, read_only=True)
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = SyncSession
        fields = ["id", "subscriber", "device", "client_dev_id", "syncml_version", "encoding",
                  "auth_type", "status", "modes", "client_added", "client_replaced",
                  "client_deleted", "server_added", "server_replaced", "server_deleted",
                  "conflict_count", "conflicts", "message_count", "error", "started",
                  "finished", "duration_seconds"]  # fmt: skip

    def get_duration_seconds(self, obj: SyncSession) -> float:
        return obj.duration.total_seconds()


class ContactSerializer(serializers.ModelSerializer):
    subscriber = serializers.SlugRelatedField(slug_field="msisdn", read_only=True)

    class Meta:
        model = Contact
        fields = ["id", "guid", "subscriber", "version", "deleted", "updated", "display_name",
                  "fields"]  # fmt: skip

    def to_representation(self, instance):  # type: ignore[no-untyped-def]
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not request.user.has_perm("sync.view_contact_contents"):
            data.pop("display_name")
            data.pop("fields")
        return data


class HeldDeleteSerializer(serializers.ModelSerializer):
    subscriber = serializers.SlugRelatedField(slug_field="msisdn", read_only=True)
    count = serializers.SerializerMethodField()

    class Meta:
        model = HeldDelete
        fields = ["id", "subscriber", "session", "datastore", "count", "store_size", "status",
                  "created", "decided", "decided_by"]  # fmt: skip

    def get_count(self, obj: HeldDelete) -> int:
        return len(obj.guids)


class ServerAlertSerializer(serializers.Serializer):
    """The body of ``POST /api/sync-profiles/<id>/server-alert/``."""

    sync_type = serializers.ChoiceField(
        choices=[206, 207, 208, 209, 210],
        default=206,
        help_text="206 two-way, 207/208 one-way/refresh from client, 209/210 from server",
    )
