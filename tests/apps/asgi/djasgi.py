"""Django's ASGI handler, the whole project in one module (settings, URLs,
views): DJANGO_SETTINGS_MODULE=djasgi."""

from django.http import HttpResponse, JsonResponse
from django.urls import path

SECRET_KEY = "test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djasgi"
INSTALLED_APPS = []
MIDDLEWARE = []
USE_TZ = True


async def hello(request):
    return HttpResponse("hello from django asgi")


def info(request):
    return JsonResponse({"path": request.path, "method": request.method,
                         "q": request.GET.get("q")})


urlpatterns = [path("hello", hello), path("info", info)]

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
