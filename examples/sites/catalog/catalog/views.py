"""The catalog: pages rendered with lxml (a Cython module, the kind that
hangs in mod_wsgi sub-interpreters).  The product list is built as an XML
document, filtered with XPath and turned into HTML with XSLT."""
import os
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from lxml import etree

PRODUCTS = [
    ("tea-green", "Green tea", "tea", "4.50", 120),
    ("tea-black", "Black tea", "tea", "3.90", 0),
    ("mug-blue", "Blue mug", "kitchen", "12.00", 15),
    ("kettle", "Kettle", "kitchen", "39.00", 4),
    ("honey", "Honey", "pantry", "7.25", 33),
]

# Parsed once per process, at import (fcgi-pm loads the app once per worker).
_XSLT = etree.XSLT(etree.parse(str(Path(__file__).parent / "xslt" / "products.xsl")))


def catalog_document(max_price=None):
    """The catalog as an lxml tree: <catalog><product id= category=>..."""
    root = etree.Element("catalog", site=settings.SITE_NAME)
    for pid, name, category, price, stock in PRODUCTS:
        p = etree.SubElement(root, "product", id=pid, category=category)
        etree.SubElement(p, "name").text = name
        etree.SubElement(p, "price", currency="EUR").text = price
        etree.SubElement(p, "stock").text = str(stock)
    if max_price is not None:
        for p in root.xpath("product[number(price) > $limit]", limit=max_price):
            root.remove(p)
    return root


def index(request):
    try:
        max_price = float(request.GET["max_price"])
    except (KeyError, ValueError):
        max_price = None
    doc = catalog_document(max_price)
    table = _XSLT(doc, title=etree.XSLT.strparam("Products"))
    ctx = {
        "table": str(table),
        "count": int(doc.xpath("count(product)")),
        "in_stock": int(doc.xpath("count(product[number(stock) > 0])")),
        "categories": sorted(set(doc.xpath("product/@category"))),
        "lxml_version": ".".join(map(str, etree.LXML_VERSION)),
        "pid": os.getpid(),
    }
    return render(request, "catalog/index.html", ctx)


def products_xml(request):
    body = etree.tostring(catalog_document(), xml_declaration=True, encoding="UTF-8",
                          pretty_print=True)
    return HttpResponse(body, content_type="application/xml")


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
