from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views
from licensing import views as licensing_views

admin.site.site_header = "Residuals administration"
admin.site.site_title = "Residuals admin"

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("marketplace.api_urls")),
    path("", include("licensing.api_urls")),
    path("", include("royalties.api_urls")),
]

urlpatterns = [
    path("", core_views.landing, name="landing"),
    path("healthz", core_views.healthz, name="healthz"),
    path(
        ".well-known/residuals-license-key.json",
        licensing_views.license_key_document,
        name="license_key_document",
    ),
    path("dashboard/", core_views.dashboard, name="dashboard"),
    path("staff/", include("core.staff_urls")),
    # The admin signs people in through allauth, where MFA is enforced.
    path("admin/login/", core_views.admin_login),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("marketplace.urls")),
    path("", include("licensing.urls")),
    path("", include("royalties.urls")),
    path("", include("royalties.urls_performer")),
    path("", include("royalties.urls_buyer")),
    path("staff/", include("royalties.urls_staff")),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"

# Media is never served from MEDIA_URL, not even in development: originals
# leave only through licensed download links, previews through their view.
