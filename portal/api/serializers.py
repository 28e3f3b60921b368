from __future__ import annotations

from rest_framework import serializers

from portal.models import ApiToken, AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    object_type = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "time",
            "actor_kind",
            "actor_label",
            "actor_user",
            "actor_token",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "message",
            "request_id",
        ]

    def get_object_type(self, obj: AuditEntry) -> str:
        return f"{obj.object_type.app_label}.{obj.object_type.model}"


class ApiTokenSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "user",
            "prefix",
            "write_enabled",
            "created",
            "expires",
            "last_used",
            "revoked",
        ]
