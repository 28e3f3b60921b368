from __future__ import annotations

from rest_framework import serializers

from campaigns.models import Campaign, CampaignRun, CampaignTarget
from campaigns.services import CAMPAIGN_FIELDS
from cardmgmt.models import AppletVersion, CardProfile, Segment


class CampaignSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:campaign-detail")
    segments = serializers.SlugRelatedField(
        slug_field="name", queryset=Segment.objects.all(), many=True, required=False
    )
    card_profiles = serializers.PrimaryKeyRelatedField(
        queryset=CardProfile.objects.all(), many=True, required=False
    )
    applet_version = serializers.PrimaryKeyRelatedField(
        queryset=AppletVersion.objects.all(), required=False, allow_null=True
    )
    installed_version = serializers.PrimaryKeyRelatedField(
        queryset=AppletVersion.objects.all(), required=False, allow_null=True
    )
    missing_version = serializers.PrimaryKeyRelatedField(
        queryset=AppletVersion.objects.all(), required=False, allow_null=True
    )
    window_weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False
    )
    target_list = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="For target_kind=list: MSISDNs or ICCIDs, one per line",
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "url",
            *CAMPAIGN_FIELDS,
            "segments",
            "card_profiles",
            "target_list",
            "state",
            "created_by",
            "created",
            "updated",
        ]
        read_only_fields = ["state", "created_by", "created", "updated"]
        # Uniqueness is the service's to check (with its own message).
        extra_kwargs = {"name": {"validators": []}}

    def validate(self, attrs):  # type: ignore[no-untyped-def]
        return attrs  # meaning is validated by the services (clean_campaign)


class CampaignRunSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:campaignrun-detail")
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = CampaignRun
        fields = [
            "id",
            "url",
            "campaign",
            "number",
            "state",
            "rerun_of",
            "total",
            "planned",
            "skipped",
            "planning_done",
            "counters",
            "failure_reasons",
            "samples",
            "percent",
            "waiting",
            "created_by",
            "started",
            "finished",
        ]
        read_only_fields = fields


class CampaignTargetSerializer(serializers.ModelSerializer):
    iccid = serializers.CharField(source="card.iccid", read_only=True, default="")

    class Meta:
        model = CampaignTarget
        fields = ["id", "run", "subscriber", "msisdn", "iccid", "job", "state", "reason", "updated"]
        read_only_fields = fields


class PreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    sample = serializers.ListField(child=serializers.DictField())
