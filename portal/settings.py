"""Settings, read from the environment.

Defaults give the embedded setup (SQLite in ./data, a broker that needs no server, console
e-mail). Production (`PORTAL_ENV=production`) refuses to start with the development secrets.
Every variable is documented in the README; nothing else in the project reads os.environ.
"""

from __future__ import annotations

import base64
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env") if (BASE_DIR / ".env").exists() else None

PORTAL_ENV = env.str("PORTAL_ENV", default="development")
PRODUCTION = PORTAL_ENV == "production"
DATA_DIR = Path(env.str("PORTAL_DATA_DIR", default=str(BASE_DIR / "data")))

# Development values: well known, therefore refused in production.
DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production-0123456789abcdef"
DEV_MASTER_KEY = base64.b64encode(
    b"dev-master-key-not-for-production"[:32].ljust(32, b"!")
).decode()

SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])


def _parse_master_keys(spec: str) -> dict[int, bytes]:
    """`MASTER_KEYS` is `version:base64key[,version:base64key...]`, each key 32 bytes."""
    keys: dict[int, bytes] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        version_text, sep, key_text = part.partition(":")
        if not sep or not version_text.isdigit():
            raise ImproperlyConfigured("MASTER_KEYS entries look like '1:<base64 of 32 bytes>'")
        key = base64.b64decode(key_text, validate=True)
        if len(key) != 32:
            raise ImproperlyConfigured(f"MASTER_KEYS version {version_text}: key must be 32 bytes")
        keys[int(version_text)] = key
    if not keys:
        raise ImproperlyConfigured("MASTER_KEYS names no key")
    return keys


MASTER_KEYS = _parse_master_keys(env.str("MASTER_KEYS", default=f"1:{DEV_MASTER_KEY}"))
MASTER_KEY_VERSION = env.int("MASTER_KEY_VERSION", default=max(MASTER_KEYS))
if MASTER_KEY_VERSION not in MASTER_KEYS:
    raise ImproperlyConfigured(f"MASTER_KEY_VERSION {MASTER_KEY_VERSION} is not in MASTER_KEYS")

if PRODUCTION:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("Production needs SECRET_KEY: a random string of 50+ chars")
    if base64.b64decode(DEV_MASTER_KEY) in MASTER_KEYS.values():
        raise ImproperlyConfigured("Production needs MASTER_KEYS: the development key is refused")
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("Production needs ALLOWED_HOSTS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "django_tables2",
    "django_htmx",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "portal",
    "cardmgmt",
    "sync",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'portal.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
# A kept connection is pinged before a request or task reuses it: after a database restart
# or failover the first request gets a new connection instead of an error.
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the worker and the web process write alongside each other. IMMEDIATE takes
    # the write lock at BEGIN, waiting up to `timeout`: a deferred transaction that read
    # first fails at once with "database is locked" when another process wrote meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
MEDIA_URL = "media/"
# Imports are streamed from disk, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=1024 * 1024 * 1024)
# Files larger than this are imported by a background job with a progress bar.
IMPORT_INLINE_MAX_BYTES = env.int("IMPORT_INLINE_MAX_BYTES", default=256 * 1024)

# Security: secure cookies and HSTS in production; CSRF everywhere.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")

# Celery. The embedded default is kombu's filesystem transport: a real worker process with
# no server to install. Tasks never run inline (task_always_eager stays off).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
        # The worker sleeps this long whenever it holds its prefetch limit of tasks (one per
        # process, acks late): kombu's default of 1 s capped it at about two tasks a second.
        "polling_interval": 0.05,
    }
CELERY_TASK_ALWAYS_EAGER = False
if CELERY_BROKER_URL.startswith("redis"):
    # A message taken by a worker that died comes back after this; the periodic recovery of
    # stalled OTA work does not wait for it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 900}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every task unless
# this is set (then every 2 x N tasks): a new PostgreSQL backend per small OTA task cost the
# workers a tenth of their time. Broken or expired connections are still dropped at each
# task's start (portal.celery, as Django does per request).
CELERY_DB_REUSE_MAX = 500
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Queues named for their work, so operators can scale them separately.
CELERY_TASK_ROUTES = {
    "cardmgmt.advance_ota_job": {"queue": "ota"},
    "cardmgmt.advance_ota_jobs": {"queue": "ota"},
    "cardmgmt.process_inbound": {"queue": "ota"},
    "cardmgmt.process_inbound_batch": {"queue": "ota"},
    "cardmgmt.expire_overdue_messages": {"queue": "ota"},
    "cardmgmt.recover_stalled_work": {"queue": "ota"},
    "sync.*": {"queue": "sync"},
    "campaigns.*": {"queue": "campaigns"},
}
CELERY_BEAT_SCHEDULE = {
    "recover-stalled-ota-work": {
        "task": "cardmgmt.recover_stalled_work",
        "schedule": 30.0,
        "options": {"expires": 60},
    },
    "expire-overdue-ota-messages": {
        "task": "cardmgmt.expire_overdue_messages",
        "schedule": 15.0,
        "options": {"expires": 30},
    },
    "expire-stale-sync-sessions": {
        "task": "sync.expire_sessions",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
}
# The SMPP links' shared token buckets live here (default: the broker, when it is Redis).
OTA_RATE_LIMIT_REDIS_URL = env.str(
    "OTA_RATE_LIMIT_REDIS_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "",
)
# The queues a worker started by `make run` consumes; production scales them separately.
CELERY_WORKER_QUEUES = env.list(
    "CELERY_WORKER_QUEUES", default=["default", "ota", "sync", "campaigns"]
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.api.permissions.PortalModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exceptions.portal_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"anon": "60/minute"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SIM sync portal API",
    "DESCRIPTION": "Subscribers, SIM cards, OTA operations, sync profiles and the audit log.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5.html"

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "portal.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
