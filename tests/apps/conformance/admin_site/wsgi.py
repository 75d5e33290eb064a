"""conformance.admin_site.wsgi:application -- the Django handler, unwrapped."""
import os

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'conformance.admin_site.settings')

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
