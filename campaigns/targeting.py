"""Who a campaign reaches: a saved filter or an uploaded list, as one subscriber queryset that
planning walks by primary key (keyset pagination)."""

from __future__ import annotations

import csv
import datetime
import io
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from campaigns.choices import TargetKind, TargetState
from campaigns.models import Campaign, CampaignListEntry, CampaignRun, CampaignTarget
from cardmgmt.choices import InstallationState, SubscriberStatus
from cardmgmt.models import Card, Installation, Subscriber
from cardmgmt.validators import validate_iccid, validate_msisdn

MAX_LIST_LINES = 1_000_000
MAX_LIST_ERRORS = 200


def filter_subscribers(campaign: Campaign, *, now: datetime.datetime | None = None) -> QuerySet:
    """Subscribers with a card matching every criterion of the saved filter."""
    from sync.choices import DeviceEventKind, SessionStatus
    from sync.models import Device, DeviceEvent, SyncProfile, SyncSession

    now = now or timezone.now()
    qs = Subscriber.objects.filter(card__isnull=False)
    if campaign.only_active:
        qs = qs.filter(status=SubscriberStatus.ACTIVE)
    if campaign.pk:
        segment_ids = [s.pk for s in campaign.segments.all()]
        profile_ids = [p.pk for p in campaign.card_profiles.all()]
    else:  # a dry run of an unsaved campaign carries them as attributes
        segment_ids = [s.pk for s in getattr(campaign, "_segments", [])]
        profile_ids = [p.pk for p in getattr(campaign, "_card_profiles", [])]
    if segment_ids:
        through = Subscriber.segments.through
        qs = qs.filter(
            Exists(through.objects.filter(subscriber_id=OuterRef("pk"), segment_id__in=segment_ids))
        )
    if profile_ids:
        qs = qs.filter(
            Exists(Card.objects.filter(pk=OuterRef("card_id"), profile_id__in=profile_ids))
        )
    if campaign.installed_version_id:
        qs = qs.filter(
            Exists(
                Installation.objects.filter(
                    card_id=OuterRef("card_id"),
                    applet_version_id=campaign.installed_version_id,
                    state=InstallationState.INSTALLED,
                )
            )
        )
    if campaign.missing_version_id:
        qs = qs.exclude(
            Exists(
                Installation.objects.filter(
                    card_id=OuterRef("card_id"),
                    applet_version_id=campaign.missing_version_id,
                    state__in=(InstallationState.INSTALLED, InstallationState.LOADING),
                )
            )
        )
    if campaign.sync_card_outdated:
        from django.db.models import F

        qs = qs.filter(
            Exists(
                SyncProfile.objects.filter(subscriber_id=OuterRef("pk")).filter(
                    Q(card_version__isnull=True) | Q(card_version__lt=F("version"))
                )
            )
        )
    if campaign.sync_card_version_below is not None:
        qs = qs.filter(
            Exists(
                SyncProfile.objects.filter(subscriber_id=OuterRef("pk")).filter(
                    Q(card_version__isnull=True)
                    | Q(card_version__lt=campaign.sync_card_version_below)
                )
            )
        )
    if campaign.last_sync_older_days is not None:
        since = now - datetime.timedelta(days=campaign.last_sync_older_days)
        qs = qs.exclude(
            Exists(
                SyncSession.objects.filter(
                    subscriber_id=OuterRef("pk"),
                    status=SessionStatus.COMPLETED,
                    started__gte=since,
                )
            )
        )
    if campaign.device_manufacturer or campaign.device_model:
        devices = Device.objects.filter(subscriber_id=OuterRef("pk"), current=True)
        if campaign.device_manufacturer:
            devices = devices.filter(manufacturer__iexact=campaign.device_manufacturer)
        if campaign.device_model:
            devices = devices.filter(model__iexact=campaign.device_model)
        qs = qs.filter(Exists(devices))
    if campaign.handset_changed_since:
        since = datetime.datetime.combine(
            campaign.handset_changed_since, datetime.time.min, tzinfo=datetime.UTC
        )
        qs = qs.filter(
            Exists(
                DeviceEvent.objects.filter(
                    device__subscriber_id=OuterRef("pk"),
                    kind=DeviceEventKind.HANDSET_CHANGE,
                    time__gte=since,
                )
            )
        )
    return qs


def source_subscribers(campaign: Campaign, run: CampaignRun | None = None) -> QuerySet:
    """What a run walks: the failed targets of the run it re-runs, else the campaign's target."""
    if run is not None and run.rerun_of_id:
        return Subscriber.objects.filter(
            card__isnull=False,
            pk__in=CampaignTarget.objects.filter(
                run_id=run.rerun_of_id, state=TargetState.FAILED
            ).values("subscriber_id"),
        )
    if campaign.target_kind == TargetKind.LIST:
        return Subscriber.objects.filter(
            card__isnull=False,
            pk__in=CampaignListEntry.objects.filter(campaign=campaign).values("subscriber_id"),
        )
    return filter_subscribers(campaign)


@dataclass
class ParsedList:
    subscriber_ids: list[tuple[int, int]] = field(default_factory=list)  # (line, id)
    errors: list[str] = field(default_factory=list)
    lines: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.subscriber_ids)


def parse_target_list(data: bytes | str) -> ParsedList:
    """An uploaded list: one MSISDN (E.164) or ICCID per line (a CSV's first column; a header
    line `msisdn` or `iccid` is allowed). Every bad line is reported with its number."""
    result = ParsedList()
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            result.errors.append("the file is not UTF-8 text")
            return result
    else:
        text = data
    msisdns: dict[str, int] = {}
    iccids: dict[str, int] = {}
    seen: set[str] = set()

    def error(line: int, message: str) -> None:
        if len(result.errors) < MAX_LIST_ERRORS:
            result.errors.append(f"line {line}: {message}")
        elif len(result.errors) == MAX_LIST_ERRORS:
            result.errors.append("... more errors not shown")

    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        result.errors.append(f"not a readable list: {exc}")
        return result
    if len(rows) > MAX_LIST_LINES:
        result.errors.append(f"more than {MAX_LIST_LINES} lines")
        return result
    for number, row in enumerate(rows, start=1):
        value = (row[0] if row else "").strip().replace(" ", "")
        if not value or value.startswith("#"):
            continue
        if number == 1 and value.lower() in ("msisdn", "iccid"):
            continue
        result.lines += 1
        if value in seen:
            error(number, f"{value} is listed twice")
            continue
        seen.add(value)
        try:
            if value.startswith("+"):
                validate_msisdn(value)
                msisdns[value] = number
            elif value.isdigit() and 18 <= len(value) <= 20 and value.startswith("89"):
                validate_iccid(value)
                iccids[value] = number
            else:
                error(number, f"{value!r} is neither an E.164 MSISDN (+...) nor an ICCID (89...)")
        except Exception as exc:
            message = "; ".join(getattr(exc, "messages", [str(exc)]))
            error(number, f"{value}: {message}")
    found: dict[int, int] = {}
    for chunk in _chunks(list(msisdns), 5000):
        for pk, msisdn, card_id in Subscriber.objects.filter(msisdn__in=chunk).values_list(
            "pk", "msisdn", "card_id"
        ):
            line = msisdns.pop(msisdn)
            if card_id is None:
                error(line, f"subscriber {msisdn} has no card")
            elif pk in found:
                error(line, f"subscriber {msisdn} is already listed on line {found[pk]}")
            else:
                found[pk] = line
    for chunk in _chunks(list(iccids), 5000):
        for pk, iccid in Subscriber.objects.filter(card__iccid__in=chunk).values_list(
            "pk", "card__iccid"
        ):
            line = iccids.pop(iccid)
            if pk in found:
                error(line, f"ICCID {iccid}'s subscriber is already listed on line {found[pk]}")
            else:
                found[pk] = line
    for msisdn, line in msisdns.items():
        error(line, f"no subscriber with MSISDN {msisdn}")
    for iccid, line in iccids.items():
        error(line, f"no subscriber has the card with ICCID {iccid}")
    result.errors.sort(key=lambda e: int(e.split(":")[0].split()[1]) if e[:5] == "line " else 0)
    result.subscriber_ids = sorted((line, pk) for pk, line in found.items())
    if not result.errors and not result.subscriber_ids:
        result.errors.append("the list holds no MSISDN or ICCID")
    return result


def _chunks(items: list, size: int):  # type: ignore[no-untyped-def]
    for start in range(0, len(items), size):
        yield items[start : start + size]
