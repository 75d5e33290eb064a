"""The admin, and a streaming view."""
from django.contrib import admin
from django.http import StreamingHttpResponse
from django.urls import path


def stream(request):
    return StreamingHttpResponse(('line %d\n' % i for i in range(200)),
                                 content_type='text/plain')


urlpatterns = [
    path('admin/', admin.site.urls),
    path('stream', stream),
]
