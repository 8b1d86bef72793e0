"""``etl serve``: the warehouse as the AmazingData platform (docs/vendors/amazingdata.md).

An edge, like the CLI: it may use the tasks, the catalog, the lake and the vendors, and
nothing imports it. ``/api/v1`` answers the platform's API in the wire forms of
:mod:`etl.vendors.amazingdata.api` (the forms the AmazingData adapter reads, so one warehouse
can be another's upstream); ``/`` serves web pages for people.

    app.py          the ASGI application: routers, errors -> the envelope, bounded bodies
    envelope.py     ``{"code", "message", "data"}`` and the error hierarchy -> HTTP codes
    accounts.py     ``etl users``: argon2-hashed passwords in the data root
    tokens.py       JWT bearer tokens and the throttle on wrong passwords
    reads.py        the lake's answers to one request (one symbol never rescans the lake)
    routes_*.py     the endpoints, by area
    launch.py       cache tasks in worker processes (worker.py), answered at once with an id
    pages.py        the web pages and their static files (plotly served from its package)
"""
