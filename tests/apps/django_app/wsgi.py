"""WSGI entry point of the test project: ``django_app.wsgi:application`` is the Django
handler wrapped in wsgiref.validate.validator (WSGIWarning as an error); ``raw_application``
is the unwrapped handler."""
import os
import warnings
import wsgiref.validate

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'django_app.settings')

from django.core.wsgi import get_wsgi_application  # noqa: E402

raw_application = get_wsgi_application()
warnings.simplefilter('error', wsgiref.validate.WSGIWarning)
application = wsgiref.validate.validator(raw_application)
