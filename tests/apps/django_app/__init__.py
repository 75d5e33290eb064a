"""A minimal Django project for the end-to-end tests: no database, no installed apps.

WSGI entry: ``django_app.wsgi:application`` (wrapped in wsgiref.validate.validator).
"""
