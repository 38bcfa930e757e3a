from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("products.xml", views.products_xml, name="products_xml"),
    path("whoami/", views.whoami, name="whoami"),
]
