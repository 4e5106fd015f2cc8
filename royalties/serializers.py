from rest_framework import serializers

from royalties import watermark
from royalties.models import UsageEvent


class UsageEventInSerializer(serializers.Serializer):
    """Documents the request body; the ingest service validates it (fast,
    per event, so one bad event never blocks the others)."""

    event_id = serializers.CharField(max_length=100)
    license = serializers.CharField(help_text="License id, e.g. LIC-7K2M9QXA4T")
    metric = serializers.ChoiceField(choices=UsageEvent.Metric.choices)
    quantity = serializers.IntegerField(min_value=0, required=False)
    amount_minor = serializers.IntegerField(required=False, help_text="For downstream_revenue")
    currency = serializers.CharField(
        max_length=3, required=False, help_text="For downstream_revenue"
    )
    occurred_at = serializers.DateTimeField()
    model = serializers.CharField(max_length=200, required=False)
    note = serializers.CharField(max_length=2000, required=False)
    adjusts = serializers.CharField(
        max_length=100, required=False, help_text="event_id of the event this one corrects"
    )


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    event_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    error = serializers.DictField(required=False)


class IngestResponseSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = EventResultSerializer(many=True)


class UsageEventSerializer(serializers.ModelSerializer):
    license = serializers.CharField(source="license.uid")
    adjusts = serializers.CharField(source="adjusts.event_id", default=None)
    tallied = serializers.SerializerMethodField()

    class Meta:
        model = UsageEvent
        fields = [
            "event_id",
            "license",
            "metric",
            "quantity",
            "amount_minor",
            "currency",
            "occurred_at",
            "model",
            "note",
            "adjusts",
            "received_at",
            "tallied",
        ]

    def get_tallied(self, obj) -> bool:
        # Annotated by the queryset (royalties.api); looked up otherwise.
        if hasattr(obj, "is_tallied"):
            return bool(obj.is_tallied)
        return obj.pk <= watermark.tallied_through_id()
