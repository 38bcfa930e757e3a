from django.urls import path, re_path

from . import views

urlpatterns = [
    path("upload/", views.upload, name="upload"),
    path("download/", views.download, name="download"),
    re_path(r"^echo/(?P<rest>.*)$", views.echo, name="echo"),
]
