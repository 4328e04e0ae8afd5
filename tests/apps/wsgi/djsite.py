"""A whole Django project in one module: settings, views, URLs and the WSGI
application. tutti imports it as the app, and python.env sets
DJANGO_SETTINGS_MODULE=djsite, so Django reads its settings from here too
(the settings must come before get_wsgi_application() at the bottom)."""
import hashlib

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = __name__
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True

from django.http import HttpResponseRedirect, JsonResponse  # noqa: E402
from django.urls import path, reverse  # noqa: E402


def hello(request):
    return JsonResponse({"framework": "django", "path": request.path,
                         "path_info": request.path_info,
                         "script_name": request.META["SCRIPT_NAME"],
                         "reverse": reverse("hello"), "q": request.GET.get("q")})


def echo(request):
    body = request.body
    return JsonResponse({"method": request.method, "size": len(body),
                         "sha256": hashlib.sha256(body).hexdigest(),
                         "content_type": request.content_type,
                         "form": {k: request.POST.getlist(k) for k in request.POST}})


def go(request):
    return HttpResponseRedirect(reverse("hello") + "?q=redirected")


urlpatterns = [
    path("hello/", hello, name="hello"),
    path("echo/", echo),
    path("go/", go),
]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
