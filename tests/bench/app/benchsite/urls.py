from django.urls import path

from . import views

urlpatterns = [
    path("django/", views.page, name="page"),
    path("django/item/<int:pk>/", views.page, name="item"),
]
