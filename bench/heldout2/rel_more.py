"""The held-out relations set's other schemas: inventory, blog and a Chinook-like music store."""

from __future__ import annotations

from heldout2.rel_base import Schema


def inventory(seed: int) -> Schema:
    s = Schema("stock", seed)
    r = s.rng
    co = s.table("countries")
    isos = co.add("iso2", "text", ["DE", "FR", "NL", "PL", "CZ", "IT", "ES", "AT", "CN", "US"])
    co.add("name", "text", [f"country {c}" for c in isos])
    wh = s.table("warehouses", ["warehouse_code"])
    whs = wh.add(
        "warehouse_code",
        "text",
        [f"WH-{c}-{n:02d}" for c in ("BER", "HAM", "PAR", "WAW") for n in (1, 2)],
    )
    wh.add(
        "country",
        "text",
        [{"BER": "DE", "HAM": "DE", "PAR": "FR", "WAW": "PL"}[w[3:6]] for w in whs],
    )
    wh.add("zip_code", "text", [f"{r.randint(10000, 99999)}" for _ in whs])
    cat = s.table("categories")
    parents = ["ELEC", "HOME", "GARD", "TOYS"]
    cats = cat.add("code", "text", parents + [f"{p}-{i}" for p in parents for i in range(1, 6)])
    cat.add("parent_code", "text", [None] * 4 + [c.split("-")[0] for c in cats[4:]])
    su = s.table("suppliers")
    sup_ids = su.add("supplier_id", "int", list(range(100, 160)))
    su.add("country_code", "text", s.refs(isos, 60, skew=True))
    su.add("rating", "int", [r.randint(1, 5) for _ in sup_ids])
    pr = s.table("products")
    skus = pr.add("sku", "text", [f"SKU-{n:06d}" for n in r.sample(range(1, 999_999), 900)])
    pr.add("supplier_id", "int", s.refs(sup_ids, 900))
    pr.add("category_code", "text", s.refs(cats[4:], 900))
    pr.add("pack_size", "int", [r.choice([1, 2, 4, 6, 12]) for _ in skus])
    sl = s.table("stock_levels", ["warehouse_code", "sku"])
    pairs = sorted({(r.choice(whs), r.choice(skus)) for _ in range(3000)})
    sl.add("warehouse_code", "text", [p[0] for p in pairs])
    sl.add("sku", "text", [p[1] for p in pairs])
    sl.add("qty", "int", [r.randint(0, 500) for _ in pairs])
    mv = s.table("stock_movements")
    n = 2000
    mv.add("movement_id", "int", list(range(1, n + 1)))
    mv.add("from_warehouse", "text", s.refs(whs, n))
    mv.add("to_warehouse", "text", s.refs(whs, n))
    mv.add("sku", "text", s.refs(skus, n, skew=True))
    mv.add("moved_qty", "int", [r.randint(1, 100) for _ in range(n)])
    for child, col, parent, key in [
        ("warehouses", "country", "countries", "iso2"),
        ("categories", "parent_code", "categories", "code"),
        ("suppliers", "country_code", "countries", "iso2"),
        ("products", "supplier_id", "suppliers", "supplier_id"),
        ("products", "category_code", "categories", "code"),
        ("stock_levels", "warehouse_code", "warehouses", "warehouse_code"),
        ("stock_levels", "sku", "products", "sku"),
        ("stock_movements", "from_warehouse", "warehouses", "warehouse_code"),
        ("stock_movements", "to_warehouse", "warehouses", "warehouse_code"),
        ("stock_movements", "sku", "products", "sku"),
    ]:
        s.fk(child, col, parent, key)
    return s


def blog(seed: int) -> Schema:
    s = Schema("blog", seed)
    r = s.rng
    us = s.table("users")
    uids = us.add("id", "int", list(range(1, 151)))
    names = us.add(
        "username",
        "text",
        [
            f"{w}{i}"
            for i, w in zip(uids, r.choices(["jo", "kat", "lee", "max"], k=150), strict=True)
        ],
    )
    us.add("display_name", "text", [n.title() for n in names])
    po = s.table("posts")
    pids = po.add("id", "int", list(range(1, 601)))
    po.add("author", "text", s.refs(names[:40], 600, skew=True))
    slugs = po.add(
        "slug", "text", [f"post-{i}-{r.choice(['howto', 'news', 'review'])}" for i in pids]
    )
    po.add("published_year", "int", [r.choice([2021, 2022, 2023, 2024]) for _ in pids])
    po.add("likes", "int", [r.randint(0, 150) for _ in pids])
    tg = s.table("tags")
    tags = tg.add("name", "text", ["python", "sql", "duckdb", "travel", "food", "ml", "rust", "go"])
    tg.add("created_year", "int", [2020 + i % 4 for i in range(8)])
    cm = s.table("comments")
    n = 2500
    cids = cm.add("id", "int", list(range(1, n + 1)))
    cm.add("post_id", "int", s.refs(pids, n))
    cm.add("commenter_username", "text", s.refs(names, n))
    cm.add(
        "parent_comment_id",
        "int",
        [None if i < 50 or r.random() < 0.6 else r.randint(1, i - 1) for i in cids],
    )
    cm.add("upvotes", "int", [r.randint(0, 40) for _ in cids])
    pt = s.table("post_tags")
    pairs = sorted({(r.choice(slugs), r.choice(tags)) for _ in range(1200)})
    pt.add("post_slug", "text", [p[0] for p in pairs])
    pt.add("tag", "text", [p[1] for p in pairs])
    for child, col, parent, key in [
        ("posts", "author", "users", "username"),
        ("comments", "post_id", "posts", "id"),
        ("comments", "commenter_username", "users", "username"),
        ("comments", "parent_comment_id", "comments", "id"),
        ("post_tags", "post_slug", "posts", "slug"),
        ("post_tags", "tag", "tags", "name"),
    ]:
        s.fk(child, col, parent, key)
    return s


def music(seed: int) -> Schema:
    s = Schema("music", seed)
    r = s.rng
    em = s.table("Employee", ["EmployeeId"])
    em.add("EmployeeId", "int", list(range(1, 9)))
    em.add(
        "LastName",
        "text",
        ["Adams", "Edwards", "Peacock", "Park", "Johnson", "Mitchell", "King", "Callahan"],
    )
    em.add("ReportsTo", "int", [None, 1, 2, 2, 2, 1, 6, 6])
    cu = s.table("Customer", ["CustomerId"])
    cids = cu.add("CustomerId", "int", list(range(1, 60)))
    cu.add("SupportRepId", "int", s.refs([3, 4, 5], 59))
    cu.add("PostalCode", "text", [f"{r.randint(10000, 99999)}" for _ in cids])
    ar = s.table("Artist", ["ArtistId"])
    arids = ar.add("ArtistId", "int", list(range(1, 276)))
    ar.add("Name", "text", [f"Artist {i}" for i in arids])
    al = s.table("Album", ["AlbumId"])
    alids = al.add("AlbumId", "int", list(range(1, 348)))
    al.add("ArtistId", "int", s.refs(arids, 347, skew=True))
    ge = s.table("Genre", ["GenreId"])
    gids = ge.add("GenreId", "int", list(range(1, 26)))
    mt = s.table("MediaType", ["MediaTypeId"])
    mids = mt.add("MediaTypeId", "int", list(range(1, 6)))
    mt.add("Name", "text", ["MPEG", "Protected AAC", "Protected MPEG-4", "Purchased AAC", "AAC"])
    ge.add("Name", "text", [f"Genre {i}" for i in gids])
    tr = s.table("Track", ["TrackId"])
    tids = tr.add("TrackId", "int", list(range(1, 3504)))
    tr.add("AlbumId", "int", s.refs(alids, 3503))
    tr.add("MediaTypeId", "int", s.refs(mids, 3503, skew=True))
    tr.add("GenreId", "int", s.refs(gids, 3503, nulls=0.01))
    tr.add("Milliseconds", "int", [r.randint(60_000, 600_000) for _ in tids])
    inv = s.table("Invoice", ["InvoiceId"])
    iids = inv.add("InvoiceId", "int", list(range(1, 413)))
    inv.add("CustomerId", "int", s.refs(cids, 412))
    inv.add("BillingPostalCode", "text", [f"{r.randint(10000, 99999)}" for _ in iids])
    il = s.table("InvoiceLine", ["InvoiceLineId"])
    lids = il.add("InvoiceLineId", "int", list(range(1, 2241)))
    il.add("InvoiceId", "int", s.refs(iids, 2240))
    il.add("TrackId", "int", s.refs(tids, 2240))
    il.add("Quantity", "int", [r.choice([1, 1, 1, 2]) for _ in lids])
    pl = s.table("Playlist", ["PlaylistId"])
    plids = pl.add("PlaylistId", "int", list(range(1, 19)))
    pl.add("Name", "text", [f"Playlist {i}" for i in plids])
    pt = s.table("PlaylistTrack", ["PlaylistId", "TrackId"])
    pairs = sorted({(r.choice(plids), r.choice(tids)) for _ in range(5000)})
    pt.add("PlaylistId", "int", [p[0] for p in pairs])
    pt.add("TrackId", "int", [p[1] for p in pairs])
    for child, col, parent, key in [
        ("Employee", "ReportsTo", "Employee", "EmployeeId"),
        ("Customer", "SupportRepId", "Employee", "EmployeeId"),
        ("Album", "ArtistId", "Artist", "ArtistId"),
        ("Track", "AlbumId", "Album", "AlbumId"),
        ("Track", "MediaTypeId", "MediaType", "MediaTypeId"),
        ("Track", "GenreId", "Genre", "GenreId"),
        ("Invoice", "CustomerId", "Customer", "CustomerId"),
        ("InvoiceLine", "InvoiceId", "Invoice", "InvoiceId"),
        ("InvoiceLine", "TrackId", "Track", "TrackId"),
        ("PlaylistTrack", "PlaylistId", "Playlist", "PlaylistId"),
        ("PlaylistTrack", "TrackId", "Track", "TrackId"),
    ]:
        s.fk(child, col, parent, key)
    return s


def schemas(seed: int) -> list[Schema]:
    return [inventory(seed + 3), blog(seed + 4), music(seed + 5)]
