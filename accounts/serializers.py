from rest_framework import serializers

from accounts.models import Membership, Organization


class OrganizationSerializer(serializers.ModelSerializer):
    country = serializers.CharField(source="country.code")

    class Meta:
        model = Organization
        fields = ["slug", "name", "country", "billing_email", "intended_use", "created_at"]


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    name = serializers.CharField(source="user.full_name")

    class Meta:
        model = Membership
        fields = ["email", "name", "role", "created_at"]


class ApiKeyInfoSerializer(serializers.Serializer):
    prefix = serializers.CharField()
    name = serializers.CharField()
    organization = serializers.CharField(source="organization.slug", default=None)
    performer = serializers.CharField(source="performer.stage_name", default=None)


class MeSerializer(serializers.Serializer):
    email = serializers.EmailField(source="user.email")
    api_key = ApiKeyInfoSerializer(allow_null=True)
    organizations = serializers.ListField(child=serializers.CharField())
    performer = serializers.CharField(allow_null=True)
    is_staff = serializers.BooleanField()
