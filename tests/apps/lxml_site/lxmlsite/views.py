"""The lxml views.  Every answer is a pure function of the request, so the
test can compute what each of hundreds of concurrent requests must get.

lxml's rule for threads: a compiled XSLT or XMLSchema belongs to the thread
that uses it, documents are not passed between threads.  So each thread
(request threads and the background ones) compiles its own, once, and keeps
it in a threading.local.
"""
import json
import os
import threading

import _xxsubinterpreters
from lxml import etree
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

NS = "urn:fcgi-pm:test"

XSLT = b"""<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:ext="urn:fcgi-pm:test">
  <xsl:output method="html"/>
  <xsl:template match="/catalog">
    <table id="{@name}">
      <xsl:for-each select="product[@stock &gt; 0]">
        <tr><td><xsl:value-of select="ext:shout(name)"/></td>
            <td><xsl:value-of select="ext:with_tax(price)"/></td></tr>
      </xsl:for-each>
    </table>
  </xsl:template>
</xsl:stylesheet>"""

XSD = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="order">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="item" maxOccurs="unbounded">
          <xs:complexType>
            <xs:attribute name="sku" type="xs:string" use="required"/>
            <xs:attribute name="qty" type="xs:positiveInteger" use="required"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="id" type="xs:integer" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>"""


# Extension functions, written in Python, called by libxslt / libxml2 from C.
def shout(context, nodes):
    text = nodes[0].text if isinstance(nodes, list) else str(nodes)
    return text.upper() + "!"


def with_tax(context, value):
    price = float(value[0].text if isinstance(value, list) else value)
    return "%.2f" % (price * 1.2)


EXTENSIONS = {(NS, "shout"): shout, (NS, "with_tax"): with_tax}
local = threading.local()


def compiled():
    """This thread's XSLT and XMLSchema (compiled on first use)."""
    if not hasattr(local, "xslt"):
        local.xslt = etree.XSLT(etree.XML(XSLT), extensions=EXTENSIONS)
        local.schema = etree.XMLSchema(etree.XML(XSD))
        local.compiles = 0
    local.compiles += 1
    return local.xslt, local.schema


def catalog(n, name):
    """A catalog of N products: product i costs i * 1.5, odd ones in stock."""
    root = etree.Element("catalog", name=name)
    for i in range(1, n + 1):
        p = etree.SubElement(root, "product", sku="p%d" % i, stock=str(i % 2))
        etree.SubElement(p, "name").text = "item%d" % i
        etree.SubElement(p, "price").text = "%.1f" % (i * 1.5)
    return root


def render(n, name):
    xslt, _ = compiled()
    return str(xslt(etree.ElementTree(catalog(n, name))))


def xslt(request):
    n = int(request.GET.get("n", "5"))
    return HttpResponse(render(n, request.GET.get("name", "c")), content_type="text/html")


def xpath(request):
    n = int(request.GET.get("n", "5"))
    doc = catalog(n, "x")
    # an XPath with a Python extension function, and plain ones
    find = etree.XPath("//product[ext:cheap(price)]/@sku", namespaces={"ext": NS},
                       extensions={(NS, "cheap"): lambda ctx, p: float(p[0].text) < 6})
    return JsonResponse({
        "cheap": [str(s) for s in find(doc)],
        "in_stock": int(doc.xpath("count(//product[@stock=1])")),
        "total": doc.xpath("sum(//price)"),
    })


@csrf_exempt
def validate(request):
    _, schema = compiled()
    try:
        doc = etree.fromstring(request.body)
    except etree.XMLSyntaxError as e:
        return HttpResponseBadRequest("not XML: %s" % e, content_type="text/plain")
    if not schema.validate(doc):
        err = schema.error_log.last_error
        return HttpResponseBadRequest("invalid: line %d: %s" % (err.line, err.message),
                                      content_type="text/plain")
    items = doc.xpath("item")
    return HttpResponse("valid: order %s, %d items, %d pieces" % (
        doc.get("id"), len(items), sum(int(i.get("qty")) for i in items)),
        content_type="text/plain")


def background(request):
    """The same transform, done by a thread the view starts."""
    n = int(request.GET.get("n", "5"))
    name = request.GET.get("name", "c")
    out = {}

    def work():
        out["html"] = render(n, name)
        out["thread"] = threading.get_ident()
        out["interp"] = int(_xxsubinterpreters.get_current())

    t = threading.Thread(target=work, name="lxml-bg")
    t.start()
    t.join(30)
    if t.is_alive():
        return HttpResponse("background thread hung", status=500, content_type="text/plain")
    return JsonResponse({"html": out["html"], "interp": out["interp"],
                         "same_thread": out["thread"] == threading.get_ident()})


def interp(request):
    return JsonResponse({"interp": int(_xxsubinterpreters.get_current()),
                         "main": int(_xxsubinterpreters.get_main()),
                         "thread": threading.get_ident(), "pid": os.getpid(),
                         "multithread": request.META["wsgi.multithread"]})
