"""Views and URLs of the minimal test project."""
import hashlib

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path


def hello(request):
    return HttpResponse('Hello from Django!\n', content_type='text/plain; charset=utf-8')


def echo(request):
    data = request.body
    return JsonResponse({'length': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
                         'method': request.method,
                         'custom': request.headers.get('X-Custom'),
                         'query': request.GET.dict()})


def error(request):
    raise RuntimeError('django view failed')


def stream(request):
    n = int(request.GET.get('n', '3'))
    return StreamingHttpResponse(('line %d\n' % i for i in range(n)),
                                 content_type='text/plain')


def meta(request):
    return JsonResponse({'request_class': request.META.get('zc.resumelb.request_class'),
                         'script_name': request.META.get('SCRIPT_NAME'),
                         'path': request.path,
                         'host': request.get_host(),
                         'scheme': request.scheme})


urlpatterns = [
    path('hello', hello),
    path('echo', echo),
    path('error', error),
    path('stream', stream),
    path('meta', meta),
]
