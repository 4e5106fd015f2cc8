from django.conf import settings


def site(request):
    """What every page needs: the site name, the role dashboards for the
    navigation, and whether payments are simulated."""
    from accounts.selectors import dashboards_for

    user = getattr(request, "user", None)
    return {
        "SITE_NAME": "Residuals",
        "PAYMENTS_SIMULATED": not settings.STRIPE_SECRET_KEY,
        "nav_dashboards": dashboards_for(user)
        if user is not None and user.is_authenticated
        else [],
    }
