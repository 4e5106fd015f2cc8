"""Read-only account endpoints: who am I, and the organizations I act for."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Membership, Organization
from accounts.selectors import principal_for
from accounts.serializers import MemberSerializer, MeSerializer, OrganizationSerializer


def _visible_organizations(request):
    """Organizations the caller acts for: a person's memberships, or the one
    organization an API key belongs to."""
    principal = principal_for(request.user, request.auth)
    return principal, Organization.objects.filter(pk__in=principal.organization_ids).order_by(
        "name"
    )


class MeApi(APIView):
    @extend_schema(responses=MeSerializer, summary="Who is calling")
    def get(self, request):
        principal, organizations = _visible_organizations(request)
        data = {
            "user": principal.user,
            "api_key": principal.api_key,
            "organizations": [o.slug for o in organizations],
            "performer": principal.performer.stage_name if principal.performer else None,
            "is_staff": principal.is_staff,
        }
        return Response(MeSerializer(data).data)


@extend_schema(summary="Organizations I act for")
class OrganizationListApi(generics.ListAPIView):
    serializer_class = OrganizationSerializer

    def get_queryset(self):
        return _visible_organizations(self.request)[1]


@extend_schema(summary="One organization I act for")
class OrganizationDetailApi(generics.RetrieveAPIView):
    serializer_class = OrganizationSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return _visible_organizations(self.request)[1]


@extend_schema(summary="Members of an organization I act for")
class OrganizationMembersApi(generics.ListAPIView):
    serializer_class = MemberSerializer

    def get_queryset(self):
        organization = generics.get_object_or_404(
            _visible_organizations(self.request)[1], slug=self.kwargs["slug"]
        )
        return (
            Membership.objects.filter(organization=organization)
            .select_related("user")
            .order_by("-role", "user__email")
        )
