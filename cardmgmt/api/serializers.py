"""API representations of the inventory. Keys are write-only and never serialised back."""

from __future__ import annotations

from rest_framework import serializers

from cardmgmt.choices import KeyAlgorithm
from cardmgmt.models import Card, CardAssignment, CardProfile, ImportJob, KeySet, Subscriber
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
