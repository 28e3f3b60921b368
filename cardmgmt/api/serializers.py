"""API representations of the inventory. Keys are write-only and never serialised back."""

from __future__ import annotations

from rest_framework import serializers

from cardmgmt.choices import KeyAlgorithm
from cardmgmt.models import (
    AppletVersion,
    Card,
    CardAssignment,
    CardProfile,
    ImportJob,
    Installation,
    KeySet,
    OtaJob,
    OtaMessage,
    SmscLink,
    Subscriber,
)
from cardmgmt.validators import check_iccid, check_imsi, check_key, check_msisdn


def _checked(check, value: str) -> str:  # type: ignore[no-untyped-def]
    try:
        return check(value)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from None


class CardProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = CardProfile
        fields = [
            "id",
            "url",
            "name",
            "vendor",
            "algorithms",
            "ram_tar",
            "rfm_tar",
            "min_security_level",
            "cmac_length",
            "counter_mode",
            "por_mode",
            "max_load_block",
            "load_descriptor",
            "pipelined",
            "por_timeout",
            "created",
            "updated",
        ]
        read_only_fields = ["created", "updated"]
        extra_kwargs = {"url": {"view_name": "api:cardprofile-detail"}}

    def validate_algorithms(self, value: list) -> list:
        if not isinstance(value, list) or any(v not in KeyAlgorithm.values for v in value):
            raise serializers.ValidationError(f"a list of: {', '.join(KeyAlgorithm.values)}")
        return value


class KeySetSerializer(serializers.ModelSerializer):
    """Writing keys: KIc, KID, KIK in hex. Reading: KVN, algorithm and counter only."""

    kic = serializers.CharField(write_only=True)
    kid = serializers.CharField(write_only=True)
    kik = serializers.CharField(write_only=True, required=False, allow_blank=True)

    class Meta:
        model = KeySet
        fields = ["kvn", "algorithm", "counter", "kic", "kid", "kik"]
        read_only_fields = ["counter"]

    def validate(self, attrs: dict) -> dict:
        errors = {}
        for name in ("kic", "kid", "kik"):
            if attrs.get(name):
                try:
                    check_key(attrs[name], attrs["algorithm"])
                except ValueError as exc:
                    errors[name] = str(exc)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class CardSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:card-detail")
    profile = serializers.SlugRelatedField(slug_field="name", queryset=CardProfile.objects.all())
    keysets = KeySetSerializer(many=True, required=False)
    subscriber = serializers.SlugRelatedField(slug_field="msisdn", read_only=True)

    class Meta:
        model = Card
        fields = [
            "id",
            "url",
            "iccid",
            "imsi",
            "profile",
            "status",
            "subscriber",
            "keysets",
            "created",
            "updated",
        ]
        read_only_fields = ["created", "updated"]

    def validate_iccid(self, value: str) -> str:
        value = _checked(check_iccid, value)
        if self.instance is not None and value != self.instance.iccid:
            raise serializers.ValidationError("the ICCID of a card cannot change")
        return value

    def validate_imsi(self, value: str) -> str:
        return _checked(check_imsi, value)


class CardAssignmentSerializer(serializers.ModelSerializer):
    card = serializers.SlugRelatedField(slug_field="iccid", read_only=True)

    class Meta:
        model = CardAssignment
        fields = ["card", "assigned", "released", "reason"]


class SegmentNamesField(serializers.ListField):
    """Segment labels: written as a list of names, read from the prefetched relation."""

    child = serializers.SlugField(max_length=50)

    def to_representation(self, value):  # type: ignore[no-untyped-def]
        return [segment.name for segment in value.all()]


class SubscriberSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:subscriber-detail")
    segments = SegmentNamesField(required=False)
    iccid = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="Assign this card (a SIM swap if another was assigned)",
    )
    card = serializers.SlugRelatedField(slug_field="iccid", read_only=True)
    card_history = CardAssignmentSerializer(source="assignments", many=True, read_only=True)

    class Meta:
        model = Subscriber
        fields = [
            "id",
            "url",
            "msisdn",
            "status",
            "segments",
            "card",
            "iccid",
            "card_history",
            "created",
            "updated",
        ]
        read_only_fields = ["created", "updated"]

    def validate_msisdn(self, value: str) -> str:
        return _checked(check_msisdn, value)

    def validate_iccid(self, value: str) -> Card | None:
        if not value:
            return None
        value = _checked(check_iccid, value)
        card = Card.objects.filter(iccid=value).first()
        if card is None:
            raise serializers.ValidationError("no card with this ICCID")
        return card


class ImportJobSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:importjob-detail")
    file = serializers.FileField(write_only=True)
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "url",
            "kind",
            "file",
            "original_name",
            "status",
            "percent",
            "total_rows",
            "processed_rows",
            "created_count",
            "unchanged_count",
            "error_count",
            "errors",
            "message",
            "requested_by",
            "created",
            "started",
            "finished",
        ]
        read_only_fields = [f for f in fields if f not in ("kind", "file")]


class AppletVersionSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:appletversion-detail")
    applet = serializers.SlugRelatedField(slug_field="name", read_only=True)
    sms_by_profile = serializers.SerializerMethodField()

    class Meta:
        model = AppletVersion
        fields = [
            "id",
            "url",
            "applet",
            "version",
            "cap_name",
            "package_aid",
            "package_version",
            "applet_aids",
            "components",
            "imports",
            "load_file_size",
            "load_file_size_with_descriptor",
            "instance_aid",
            "privileges",
            "toolkit_tar",
            "priority",
            "max_timers",
            "menu_entries",
            "max_menu_text_length",
            "max_channels",
            "min_security_level",
            "non_volatile_quota",
            "volatile_quota",
            "sms_by_profile",
            "uploaded_by",
            "created",
        ]
        read_only_fields = [
            "version",
            "cap_name",
            "package_aid",
            "package_version",
            "applet_aids",
            "components",
            "imports",
            "load_file_size",
            "load_file_size_with_descriptor",
            "uploaded_by",
            "created",
        ]

    def get_sms_by_profile(self, obj: AppletVersion) -> list[dict]:
        from cardmgmt import ota, otabridge

        if self.context.get("view") and self.context["view"].action == "list":
            return []
        rows = []
        for profile in CardProfile.objects.all():
            try:
                packets, sms = otabridge.sms_count(obj, profile)
                rows.append({"profile": profile.name, "packets": packets, "sms": sms})
            except (ota.OtaError, ValueError) as exc:
                rows.append({"profile": profile.name, "error": str(exc)})
        return rows

    def validate_menu_entries(self, value: list) -> list:
        if not isinstance(value, list) or not all(
            isinstance(e, list | tuple)
            and len(e) == 2
            and all(isinstance(x, int) and 0 <= x <= 255 for x in e)
            for e in value
        ):
            raise serializers.ValidationError("a list of [position, identifier] pairs, 0-255")
        return [list(e) for e in value]


class AppletUploadSerializer(serializers.Serializer):
    applet = serializers.CharField(max_length=100)
    version = serializers.CharField(max_length=30)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    cap_file = serializers.FileField()


class OtaMessageSerializer(serializers.ModelSerializer):
    sms = serializers.SerializerMethodField()

    class Meta:
        model = OtaMessage
        fields = [
            "step",
            "description",
            "tar",
            "kvn",
            "state",
            "attempt",
            "max_attempts",
            "counter",
            "sms",
            "queued_at",
            "submitted_at",
            "delivered_at",
            "confirmed_at",
            "por_status",
            "por_sw",
            "por_text",
            "failure_reason",
            "history",
        ]

    def get_sms(self, obj: OtaMessage) -> int:
        return len(obj.user_data)


class OtaJobSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:otajob-detail")
    iccid = serializers.CharField(write_only=True)
    card = serializers.SlugRelatedField(slug_field="iccid", read_only=True)
    applet_version = serializers.PrimaryKeyRelatedField(
        queryset=AppletVersion.objects.all(), required=False, allow_null=True
    )
    messages = OtaMessageSerializer(many=True, read_only=True)

    class Meta:
        model = OtaJob
        fields = [
            "id",
            "url",
            "operation",
            "iccid",
            "card",
            "applet_version",
            "state",
            "priority",
            "requested_by",
            "result",
            "created",
            "finished",
            "messages",
        ]
        read_only_fields = ["state", "priority", "requested_by", "result", "created", "finished"]

    def validate_iccid(self, value: str) -> Card:
        card = Card.objects.select_related("profile").filter(iccid=value.strip()).first()
        if card is None:
            raise serializers.ValidationError("no card with this ICCID")
        return card


class InstallationSerializer(serializers.ModelSerializer):
    card = serializers.SlugRelatedField(slug_field="iccid", read_only=True)
    applet_version = serializers.StringRelatedField()

    class Meta:
        model = Installation
        fields = ["id", "card", "applet_version", "state", "confirmed_by", "updated"]


class SmscLinkSerializer(serializers.ModelSerializer):
    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=9
    )

    class Meta:
        model = SmscLink
        fields = [
            "id",
            "name",
            "host",
            "port",
            "system_id",
            "password",
            "system_type",
            "source_addr",
            "tps",
            "window",
            "enabled",
            "status",
            "status_updated",
        ]
        read_only_fields = ["status", "status_updated"]
