"""Residuals settings: one module, driven by environment variables.

``RESIDUALS_ENV`` picks the profile: ``development`` (the default, used by
``make run``), ``test`` (set by the test suite) or ``production``. Production
refuses to start without a real ``SECRET_KEY`` and turns on every transport
security setting that ``manage.py check --deploy`` looks for.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("RESIDUALS_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

RESIDUALS_ENV = env.str("RESIDUALS_ENV", default="development")
if RESIDUALS_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(
        f"RESIDUALS_ENV must be development, test or production, not {RESIDUALS_ENV!r}"
    )
PRODUCTION = RESIDUALS_ENV == "production"


def _development_secret_key() -> str:
    """A random key kept in var/ (never in the repository) for local runs."""
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured(
            "Production needs SECRET_KEY: a random value of at least 50 characters."
        )
    DEBUG = False
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _development_secret_key()
    DEBUG = env.bool("DEBUG", default=RESIDUALS_ENV == "development")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "whitenoise.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_countries",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "core",
    "accounts",
    "marketplace",
    "licensing",
    "royalties",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.StaffMfaRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.site",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
# PostgreSQL (psycopg 3) when DATABASE_URL is set; SQLite as the embedded
# default for a first look. The test suite refuses to run on SQLite.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'residuals.sqlite3'}")
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file under `make run`.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# --- Auth -----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if RESIDUALS_ENV == "test":
    # Hashing cost is irrelevant to what the tests check; keep the suite fast.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "landing"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Residuals] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_SESSION_REMEMBER = None
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Residuals"
# Staff must pass a second factor before any staff page or the admin.
RESIDUALS_STAFF_PATH_PREFIXES = ("/admin/", "/staff/")

# --- Internationalisation ------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Outside production whitenoise serves straight from the source folders, so
# no collectstatic is needed for `make run` or the tests.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Media (originals and previews) goes through Django's storage API: local
# disk by default, or any S3-compatible service with MEDIA_STORAGE=s3.
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="local")
if MEDIA_STORAGE not in {"local", "s3"}:
    raise ImproperlyConfigured("MEDIA_STORAGE is `local` or `s3`.")
_MEDIA_BACKEND: dict = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if MEDIA_STORAGE == "s3":
    _MEDIA_BACKEND = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("S3_BUCKET"),
            "endpoint_url": env.str("S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("S3_REGION", default="") or None,
            # Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
            # (or the machine's role); never from the repository.
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
            "location": env.str("S3_PREFIX", default=""),
        },
    }
STORAGES = {
    "default": _MEDIA_BACKEND,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Uploads ----------------------------------------------------------------
# Uploaded files stream to a temporary file on disk while they are hashed and
# measured (marketplace.uploads); nothing holds a whole recording in memory.
RECORDING_MAX_UPLOAD_BYTES = env.int("RECORDING_MAX_UPLOAD_BYTES", default=500 * 1024 * 1024)
FILE_UPLOAD_HANDLERS = ["marketplace.uploads.HashingUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_TEMP_DIR = env.str("FILE_UPLOAD_TEMP_DIR", default="") or None
DATA_UPLOAD_MAX_NUMBER_FILES = 250
PREVIEW_SECONDS = env.int("PREVIEW_SECONDS", default=12)

# --- Email ----------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Residuals <no-reply@residuals.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- REST API -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Residuals API",
    "DESCRIPTION": (
        "License emotional performance recordings, report downstream usage and pay royalties. "
        "Authenticate machines with `Authorization: Bearer <api key>`. Every error has the "
        'shape `{"error": {"code", "message", "details"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from the project's own static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a field called "status"; name each choice set.
    "ENUM_NAME_OVERRIDES": {
        "RecordingStatusEnum": "marketplace.models.Recording.Status",
        "ListingStatusEnum": "marketplace.models.Listing.Status",
        "ImportRowStatusEnum": "marketplace.models.ImportRow.Status",
        "OrderStatusEnum": "licensing.models.Order.Status",
        "LicenseStatusEnum": "licensing.models.License.Status",
        "AttestationStatusEnum": "licensing.models.DeletionAttestation.Status",
        "RoyaltyInvoiceStatusEnum": "royalties.models.RoyaltyInvoice.Status",
    },
}
API_KEY_PREFIX = "rsd"

# --- Payments ----------------------------------------------------------------
# With no STRIPE_SECRET_KEY the simulated gateway runs (DEBUG only) and every
# page says payments are simulated. STRIPE_API_BASE points the official
# library elsewhere (the tests' Stripe double). Several webhook secrets are
# accepted at once, so a secret can be rotated without losing events.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_WEBHOOK_SECRETS = env.list("STRIPE_WEBHOOK_SECRETS", default=[])
PLATFORM_FEE_BPS = env.int("PLATFORM_FEE_BPS", default=2000)  # 20 % of sales and royalties

ROYALTY_INVOICE_DAYS_UNTIL_DUE = env.int("ROYALTY_INVOICE_DAYS_UNTIL_DUE", default=30)
# Suspend an organization's licenses when a royalty invoice payment fails.
ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT = env.bool(
    "ROYALTY_SUSPEND_LICENSES_ON_FAILED_PAYMENT", default=False
)

# --- Licensing -----------------------------------------------------------------
DOWNLOAD_LINK_SECONDS = env.int("DOWNLOAD_LINK_SECONDS", default=15 * 60)
DELETION_ATTESTATION_DAYS = env.int("DELETION_ATTESTATION_DAYS", default=30)
# Ed25519 key that signs license certificates: base64 of the 32-byte private
# key. Required in production; generated and kept in var/ for local runs.
LICENSE_SIGNING_KEY = env.str("LICENSE_SIGNING_KEY", default="")

# --- Celery ---------------------------------------------------------------
# With no CELERY_BROKER_URL, kombu's filesystem transport is the embedded
# broker: a real worker and beat run beside the web server, no server needed.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_FILESYSTEM_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FILESYSTEM_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_FILESYSTEM_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_FILESYSTEM_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_FILESYSTEM_DIR / "control"),
        "store_processed": False,
    }
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# Unit tests run tasks in-process; tests marked `worker` start a real worker
# on a real broker instead (tests/celery_support.py).
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=RESIDUALS_ENV == "test")
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Every periodic job is defined here and nowhere else.
CELERY_BEAT_SCHEDULE: dict = {
    "core-heartbeat": {
        "task": "core.tasks.heartbeat_task",
        "schedule": timedelta(minutes=1),
    },
    "royalties-tally": {
        "task": "royalties.tasks.tally_usage_task",
        "schedule": timedelta(minutes=2),
    },
    "licensing-lifecycle": {
        "task": "licensing.tasks.licenses_lifecycle_task",
        "schedule": timedelta(minutes=10),
    },
    "marketplace-preview-resend": {
        # Previews pending (or failed on storage) for 15 minutes get their
        # task sent again: a broker outage at upload must not leave them
        # "being prepared" for ever.
        "task": "marketplace.tasks.recording_previews_resend_task",
        "schedule": timedelta(minutes=5),
        "kwargs": {"older_than_minutes": 15},
    },
    "royalties-monthly-invoices": {
        "task": "royalties.tasks.royalty_invoices_task",
        "schedule": crontab(minute=30, hour=2, day_of_month=1),
    },
    "royalties-overdue-invoices": {
        "task": "royalties.tasks.royalty_invoices_overdue_task",
        "schedule": crontab(minute=0, hour=6),
    },
    "royalties-stripe-events-sweep": {
        "task": "royalties.tasks.stripe_events_sweep_task",
        "schedule": timedelta(minutes=5),
    },
}
HEALTHZ_BROKER_TIMEOUT_SECONDS = env.float("HEALTHZ_BROKER_TIMEOUT_SECONDS", default=2.0)

# --- Security ---------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"


def _trusted_proxies(entries: list[str]) -> list[str]:
    import ipaddress

    networks = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network"
            ) from None
    return networks


# Reverse proxies whose X-Forwarded-For is believed (IPs or CIDRs,
# comma-separated). Empty: REMOTE_ADDR is the client (core.services.client_ip).
TRUSTED_PROXIES = _trusted_proxies(env.list("TRUSTED_PROXIES", default=[]))
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},
    },
}
