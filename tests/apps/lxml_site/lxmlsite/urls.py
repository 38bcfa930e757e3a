from django.urls import path

from . import views

urlpatterns = [
    path("xslt/", views.xslt),
    path("xpath/", views.xpath),
    path("validate/", views.validate),
    path("background/", views.background),
    path("interp/", views.interp),
]
