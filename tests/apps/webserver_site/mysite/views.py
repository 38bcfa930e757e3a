"""Views of the web-server test site.  Every answer is JSON (or bytes)
that says what the application saw, so the tests check the web server's
FastCGI parameters end to end.

  ANY  /echo/<rest>     method, SCRIPT_NAME, PATH_INFO, path, reverse(),
                        query and POST form fields, a few CGI variables
  POST /upload/         size and sha256 of the body (raw) or of the
                        multipart field "file", read in chunks
  GET  /download/?size=N   N bytes (default 10 MiB) from data.chunks,
                        streamed, with Content-Length and X-Sha256
"""
import hashlib
import os

from django.http import JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from . import data

CGI = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "REQUEST_URI", "QUERY_STRING",
       "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
       "REMOTE_ADDR", "HTTP_HOST", "SERVER_SOFTWARE", "GATEWAY_INTERFACE")


@csrf_exempt
def echo(request, rest):
    return JsonResponse({
        "method": request.method,
        "script_name": request.META.get("SCRIPT_NAME"),
        "path_info": request.META.get("PATH_INFO"),
        "path": request.path,
        "rest": rest,
        "reverse": reverse("echo", kwargs={"rest": "x"}),
        "absolute_uri": request.build_absolute_uri(),
        "get": {k: request.GET.getlist(k) for k in request.GET},
        "post": {k: request.POST.getlist(k) for k in request.POST},
        "cgi": {k: request.META.get(k) for k in CGI},
        "pid": os.getpid(),
        "host_tag": os.environ.get("MYSITE_HOST_TAG", ""),
    })


@csrf_exempt
def upload(request):
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    h = hashlib.sha256()
    size = 0
    if request.content_type == "multipart/form-data":
        f = request.FILES.get("file")
        if f is None:
            return JsonResponse({"error": "no file field"}, status=400)
        for c in f.chunks():
            h.update(c)
            size += len(c)
        kind = "multipart"
        name = f.name
    else:
        while True:
            c = request.read(256 * 1024)
            if not c:
                break
            h.update(c)
            size += len(c)
        kind = "raw"
        name = None
    return JsonResponse({"kind": kind, "name": name, "size": size, "sha256": h.hexdigest(),
                         "content_length": request.META.get("CONTENT_LENGTH"),
                         "post": {k: request.POST.getlist(k) for k in request.POST}
                         if kind == "multipart" else {}})


def download(request):
    size = int(request.GET.get("size", 10 * 1024 * 1024))
    r = StreamingHttpResponse(data.chunks(size), content_type="application/octet-stream")
    r["Content-Length"] = str(size)
    r["X-Sha256"] = data.digest(size)
    return r
