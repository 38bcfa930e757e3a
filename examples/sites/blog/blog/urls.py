from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("post/<slug:slug>/", views.post_detail, name="post"),
    path("comment/", views.comment, name="comment"),
    path("whoami/", views.whoami, name="whoami"),
]
