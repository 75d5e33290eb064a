"""Creates $RLB_CONFORMANCE_DB: migrations, and the superuser admin/admin-password."""
import os

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'conformance.admin_site.settings')

import django  # noqa: E402
from django.core.management import call_command  # noqa: E402

django.setup()
call_command('migrate', verbosity=0, interactive=False)
from django.contrib.auth.models import User  # noqa: E402
User.objects.create_superuser('admin', 'admin@example.com', 'admin-password')
