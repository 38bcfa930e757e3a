import datetime

from django.shortcuts import render

ITEMS = [
    {"pk": i, "name": "Item number %d" % i, "price": 1.5 * i,
     "tags": ["red", "green", "blue"][: i % 3 + 1],
     "added": datetime.date(2024, 1, 1) + datetime.timedelta(days=i),
     "description": "A <fairly> long description of item %d & friends." % i}
    for i in range(15)
]


def page(request, pk=None):
    return render(request, "page.html", {
        "title": "Catalog",
        "items": ITEMS,
        "query": request.GET.get("q", ""),
    })
