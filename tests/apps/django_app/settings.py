"""Settings of the minimal test project (everything in this one file)."""
SECRET_KEY = 'resumelb-e2e-tests-not-secret'
DEBUG = False
ALLOWED_HOSTS = ['*']
ROOT_URLCONF = 'django_app.urls'
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
TEMPLATES = []
USE_TZ = True
TIME_ZONE = 'UTC'  # Django sets the process's TZ from this; keep log times in UTC
USE_I18N = False
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'
LOGGING_CONFIG = None  # Django's default logging would mail admins; the worker logs errors
