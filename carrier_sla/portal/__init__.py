"""The CLEC portal: a read-only web application over a store (`carrier-sla serve`).

Each CLEC logs in and sees its own results, records, rejects, remedies and statements of every
published month, with the all-CLEC aggregate figures of the same cells; staff and ILEC users see
every carrier. The portal reads the store only through carrier_sla.store.view.StoreView, builds
a cell's page with the library behind `carrier-sla explain` and a package download with the one
behind `carrier-sla package`.

    users.py    the users file: accounts, roles, Argon2 password hashes
    throttle.py login rate limiting (failures per user and per address, exponential delay)
    access.py   the audit log STORE/portal/access.jsonl
    data.py     what a user may see, read through the store view (pure of the web framework)
    app.py      the Starlette application: routes, sessions, CSRF, security headers, errors
"""
