"""The blog: a few posts kept in code, a comment form (CSRF-protected POST)
and /whoami/, which tells which settings this process runs with."""
import os

from django import forms
from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import render

POSTS = [
    {"slug": "hello-fcgi-pm", "title": "Hello, fcgi-pm",
     "body": "Each site runs in its own pool of processes, each process in "
             "CPython's main interpreter."},
    {"slug": "why-main-interpreter", "title": "Why the main interpreter",
     "body": "Cython modules such as lxml use the simplified GIL API, which "
             "assumes a single interpreter per process."},
    {"slug": "static-files", "title": "Static files",
     "body": "nginx serves /static/ itself; Python only sees dynamic pages."},
]


class CommentForm(forms.Form):
    name = forms.CharField(max_length=50)
    text = forms.CharField(max_length=2000, widget=forms.Textarea)


def index(request):
    return render(request, "blog/index.html", {"posts": POSTS, "pid": os.getpid()})


def post_detail(request, slug):
    for p in POSTS:
        if p["slug"] == slug:
            return render(request, "blog/post.html", {"post": p})
    raise Http404("no such post")


def comment(request):
    if request.method == "POST":
        form = CommentForm(request.POST)
        if form.is_valid():
            return render(request, "blog/thanks.html", form.cleaned_data)
        return render(request, "blog/comment.html", {"form": form}, status=400)
    return render(request, "blog/comment.html", {"form": CommentForm()})


def whoami(request):
    return JsonResponse({
        "site": settings.SITE_NAME,
        "settings_module": settings.SETTINGS_MODULE,
        "environ_settings": os.environ.get("DJANGO_SETTINGS_MODULE"),
        "root_urlconf": settings.ROOT_URLCONF,
        "pid": os.getpid(),
        "script_name": request.META.get("SCRIPT_NAME"),
        "path_info": request.path_info,
        "path": request.path,
        "absolute_uri": request.build_absolute_uri(),
    })
