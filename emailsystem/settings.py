"""Settings for every process of the email service, read from the environment.

The variable names are a contract shared with the sender, the manifests and the documentation
(the table in docs/configuration.md). Anything secret is required unless DJANGO_DEBUG=1.
One module past ~300 lines so an operator reads every setting, beside the variable it reads, in one place.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from emailsystem.database_url import DatabaseUrlError, database_config
from emailsystem.env import env_bool, env_int, env_list, env_rate, env_seconds_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent


DEBUG = env_bool("DJANGO_DEBUG")

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required (or set DJANGO_DEBUG=1 for local development)")
    SECRET_KEY = "development-only-key-never-used-when-debug-is-off"  # noqa: S105

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # Swagger UI's JavaScript and CSS, served by us (whitenoise) instead of a CDN.
    "drf_spectacular_sidecar",
    "emailsystem.core",
    "emailsystem.users",
    "emailsystem.emails",
    "emailsystem.outbound",
]

MIDDLEWARE = [
    # First: it times everything below, and answers /metrics before host checks and sessions.
    "emailsystem.core.middleware.ObservabilityMiddleware",
    "emailsystem.core.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Answers a throttled log-in on Django's own forms (admin, /api-auth/login/) with a 429 page.
    "emailsystem.users.middleware.LoginThrottledMiddleware",
]

ROOT_URLCONF = "emailsystem.urls"
WSGI_APPLICATION = "emailsystem.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide overrides of other apps' templates (the admin index links the dashboard).
        "DIRS": [BASE_DIR / "emailsystem" / "templates"],
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

try:
    DATABASES = {
        # May name a primary and its standbys in libpq's multi-host form (emailsystem/database_url.py).
        "default": database_config(
            env_str("DATABASE_URL", "sqlite:///db.sqlite3"),
            # Persistent connections: a new PostgreSQL connection per request costs more than the request.
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
except DatabaseUrlError as error:
    raise ImproperlyConfigured(str(error)) from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # `make run`: request threads and the embedded delivery thread write to one SQLite file, and
    # SQLite allows one writer at a time. Without these, a send that met the worker's write got
    # "database is locked" at once (the API answers that OperationalError as 503): a DEFERRED
    # transaction that has read cannot wait for the write lock, because SQLite would deadlock.
    # - IMMEDIATE: every atomic block takes the write lock at BEGIN, where SQLite can wait.
    # - timeout: how long it waits (sqlite3's busy timeout) before "database is locked"; our
    #   writes take milliseconds, so only a stuck writer outlasts it.
    # - WAL: readers never wait for the writer, nor the writer for readers. synchronous=NORMAL is
    #   WAL's usual pairing: a process crash loses nothing committed; a power cut may lose the
    #   last commits. Acceptable for a developer's database; deployments use PostgreSQL.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared by every web process (what is cached must agree across replicas), and needs no extra
# server: the table is created by a migration in core.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "django_cache",
    }
}

AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = ["emailsystem.users.backends.EmailOrUsernameBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGIN_URL = "/api-auth/login/"
LOGIN_REDIRECT_URL = "/api/v1/"

# Browsers get these without a reverse proxy having to add them.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True

# HTTPS (docs/configuration.md). On by default outside DEBUG: redirect plain HTTP, send
# cookies only over TLS, and ask browsers to remember that (HSTS). A deployment served over
# plain HTTP (Minikube's port-forward) sets DJANGO_HTTPS=0.
HTTPS = env_bool("DJANGO_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
# Kubernetes probes call the pods over plain HTTP; a redirect would fail them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", default=False)
# Trust X-Forwarded-Proto only from a TLS-terminating proxy that sets it; anyone else could
# claim HTTPS with it.
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload is a submission to browser vendors that is hard to undo: the operator's
    # decision (DJANGO_HSTS_PRELOAD=1), not a default.
    "security.W021",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous write gets 401 with a WWW-Authenticate header, not 403.
        "emailsystem.users.authentication.ExpiringTokenAuthentication",
        "emailsystem.users.authentication.ApiKeyAuthentication",
        "emailsystem.users.authentication.BrowserSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "emailsystem.core.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "emailsystem.core.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "emailsystem.core.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # How many proxies add X-Forwarded-For in front of us. 0 (default) trusts only the socket
    # address, so a client cannot dodge the per-IP throttles by inventing the header.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
    "EXCEPTION_HANDLER": "emailsystem.core.exceptions.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/); see emailsystem/core/schema.py.
SPECTACULAR_SETTINGS = {
    "TITLE": "emailsystem API",
    "DESCRIPTION": "Send emails from admin-managed templates (or ad hoc) and read back the log of what you sent.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Tags and operation ids from the path after the version: "users", "emails".
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Anyone may read the schema; it is built from the code, so it holds no secrets.
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Separate request and response components: `password` is write-only, `id` read-only.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "EmailStatusEnum": "emailsystem.emails.models.EmailStatus",
        "DeliveryStatusEnum": "emailsystem.emails.models.DeliveryStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "emailsystem.users.schema.api_key_scope_refusals",
    ],
}

# Log-in throttles (docs/sending/login.md). Every password check, on any
# login form, and every registration counts against the client IP's THROTTLE_AUTH; failed
# checks against one account, from any IP, count against THROTTLE_LOGIN_ACCOUNT. Both are
# (attempts, seconds) in a window that starts with the first attempt and is not extended by
# refused ones: that end is the cool-off.
THROTTLE_AUTH = env_rate("THROTTLE_AUTH", "20/min")
THROTTLE_LOGIN_ACCOUNT = env_rate("THROTTLE_LOGIN_ACCOUNT", "10/15min")

# Seconds an API token stays valid after it was issued; unset (0): tokens last until revoked.
TOKEN_MAX_AGE = env_int("TOKEN_MAX_AGE", 0)

# One JSON object per line (emailsender.logs, shared with the sender), with the request id and
# secrets masked; LOG_FORMAT=plain for a developer's terminal (`make run` sets it).
LOG_FORMAT = env_str("LOG_FORMAT", "json").lower()
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain (got {LOG_FORMAT!r})")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"()": "emailsender.logs.formatter_for", "log_format": LOG_FORMAT},
        # runserver's request lines (`make run` only), as Django prints them.
        "runserver": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"},
    },
    "filters": {
        "request_id": {"()": "emailsender.logs.RequestIdFilter"},
        "mask_secrets": {"()": "emailsender.logs.SecretMaskFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": ["request_id", "mask_secrets"],
        },
        "runserver": {"class": "logging.StreamHandler", "formatter": "runserver", "filters": ["mask_secrets"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Every django.* record once, through the root handler: configuring "django" removes the
        # console handler Django adds under DEBUG, which printed each of them a second time (and
        # resets its children, so django.server is configured again below).
        "django": {"handlers": []},
        # One line per request: the server's access line (gunicorn.access, or runserver's
        # django.server). django.request would add a second line for every 4xx, so it logs only
        # 5xx, whose line carries the traceback.
        "django.request": {"level": "ERROR"},
        "django.server": {"handlers": ["runserver"], "level": "INFO", "propagate": False},
        # pika's chatter stays at WARNING.
        "pika": {"level": "WARNING"},
    },
}

# Who may read /metrics (core.middleware.metrics_allowed): unset, direct in-cluster connections
# only; set, whoever sends "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = env_str("METRICS_TOKEN")

# --- The service's own settings (docs/configuration.md) ---

# Largest request body accepted; bigger ones get 413 before anything is parsed.
# 1 MiB holds 1,000 recipients and a generous ad hoc body.
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 1024 * 1024, minimum=1024)
# Decoded attachments per send; the send endpoint also takes their base64 (core.middleware.request_max_bytes).
ATTACHMENTS_MAX_BYTES = env_int("ATTACHMENTS_MAX_BYTES", 10 * 1024 * 1024, minimum=0)
SEND_PATHS = ("/api/v1/emails/sent-email/",)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BYTES + 4 * -(-ATTACHMENTS_MAX_BYTES // 3)

# SendGrid accepts at most 1,000 personalizations per request, and one send is one request.
SEND_MAX_RECIPIENTS = env_int("SEND_MAX_RECIPIENTS", 1000, minimum=1)
SEND_DAILY_QUOTA = env_int("SEND_DAILY_QUOTA", 10000)
# Messages per batch send: 500 one-recipient messages fit REQUEST_MAX_BYTES with room to spare.
BATCH_MAX_MESSAGES = env_int("BATCH_MAX_MESSAGES", 500, minimum=1)
# A request handing at least this many recipients to the sender goes to the bulk lane
# (docs/sender/fairness.md): a tenth of one send's maximum, well above what one person's action mails.
BULK_LANE_MIN_RECIPIENTS = env_int("BULK_LANE_MIN_RECIPIENTS", 100, minimum=1)
IDEMPOTENCY_KEY_TTL_HOURS = 24
# Days each kind of record is kept before `manage.py prune` deletes it (docs/deploy/retention.md);
# 0 keeps it forever. Idempotency records go once past IDEMPOTENCY_KEY_TTL_HOURS.
RETENTION_SENT_EMAILS_DAYS = env_int("RETENTION_SENT_EMAILS_DAYS", 90)
RETENTION_DELIVERY_EVENTS_DAYS = env_int("RETENTION_DELIVERY_EVENTS_DAYS", 90)
RETENTION_DAILY_COUNTS_DAYS = env_int("RETENTION_DAILY_COUNTS_DAYS", 90)
RETENTION_OUTBOX_LEFTOVERS_DAYS = env_int("RETENTION_OUTBOX_LEFTOVERS_DAYS", 7)
# How far ahead a send may be scheduled (`send_at`); docs/sending/scheduled.md.
SEND_AT_MAX_DAYS = env_int("SEND_AT_MAX_DAYS", 30, minimum=1)
# Rendered subject and bodies above this size are refused: a template loop cannot grow without bound.
TEMPLATE_RENDER_MAX_CHARS = env_int("TEMPLATE_RENDER_MAX_CHARS", 1_000_000, minimum=1000)

EMAIL_FROM_ADDRESS = env_str("EMAIL_FROM_ADDRESS")
# The From of the emails the service sends on its own behalf (address verification links); unset,
# EMAIL_FROM_ADDRESS, else no-reply@localhost (emails.verification.system_from_address).
SYSTEM_FROM_ADDRESS = env_str("SYSTEM_FROM_ADDRESS")

# How the service is reached from outside: the base of links mailed to people (verification
# links). Unset: the host of the request that asked for the link.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL").rstrip("/")
if PUBLIC_BASE_URL and not PUBLIC_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"PUBLIC_BASE_URL must start with http:// or https:// (got {PUBLIC_BASE_URL!r})")

# Who may register through the API (docs/sending/sender-identity.md): open (anyone), domains (addresses
# at REGISTRATION_DOMAINS only) or closed (admins create users).
REGISTRATION = env_str("REGISTRATION", "open").lower()
if REGISTRATION not in {"open", "domains", "closed"}:
    raise ImproperlyConfigured(f"REGISTRATION must be open, domains or closed (got {REGISTRATION!r})")
REGISTRATION_DOMAINS = [domain.lower().lstrip("@") for domain in env_list("REGISTRATION_DOMAINS", "")]
if REGISTRATION == "domains" and not REGISTRATION_DOMAINS:
    raise ImproperlyConfigured("REGISTRATION=domains needs REGISTRATION_DOMAINS (comma separated, e.g. example.org)")
# Seconds an address verification link stays valid: three days, Django's password reset default
# (long enough for a weekend, short enough that an old mailbox's links die).
EMAIL_VERIFICATION_MAX_AGE = env_int("EMAIL_VERIFICATION_MAX_AGE", 3 * 24 * 3600, minimum=60)

RABBITMQ_URL = env_str("RABBITMQ_URL")
SENDGRID_API_KEY = env_str("SENDGRID_API_KEY")
SENDGRID_API_HOST = env_str("SENDGRID_API_HOST", "https://api.sendgrid.com")
OUTBOX_DIR = env_str("OUTBOX_DIR", str(BASE_DIR / "var" / "outbox"))
# Names the exchange and queues (emailsender.topology); the sender must use the same value.
QUEUE_PREFIX = env_str("QUEUE_PREFIX", "emails")

# Outbound webhooks (emailsystem/outbound, docs/outbound-webhooks.md). ALLOW_PRIVATE lets endpoints
# use http:// and private, loopback and link-local addresses: local development and tests only.
OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = env_bool("OUTBOUND_WEBHOOKS_ALLOW_PRIVATE")
# Seconds between a failed attempt and the next: one delay per retry, so the default makes
# eight attempts over about a day (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
OUTBOUND_WEBHOOKS_RETRY_SCHEDULE = env_seconds_list(
    "OUTBOUND_WEBHOOKS_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000"
)

# SendGrid's Event Webhook (emails/webhooks): the verification key exactly as SendGrid shows it
# (base64 DER, or PEM). Unset: the webhook refuses every request (a system check warns).
SENDGRID_WEBHOOK_PUBLIC_KEY = env_str("SENDGRID_WEBHOOK_PUBLIC_KEY")
# A signed request older (or further in the future) than this is refused: a captured request
# cannot be replayed later. SendGrid signs each attempt, retries included, when it sends it.
SENDGRID_WEBHOOK_MAX_AGE_SECONDS = env_int("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", 600, minimum=1)
# Requests to the webhook per source address (client_ip, as the log-in throttles read it),
# counted in the database before anything else: past the rate a request is answered 429 before
# its body is read or its signature verified. SendGrid retries a refused batch (for up to 24
# hours), so a batch past the rate is delayed, not lost. 600/min is 10 a second from one address.
THROTTLE_SENDGRID_WEBHOOK = env_rate("THROTTLE_SENDGRID_WEBHOOK", "600/min")

# Datetimes on Django's own pages (the admin) show seconds and the zone: "2026-11-28 19:44:07 UTC"
# (emailsystem/core/formats). Django's English locale formats would win over DATETIME_FORMAT.
FORMAT_MODULE_PATH = ["emailsystem.core.formats"]
