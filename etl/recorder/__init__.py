"""``etl record``: a vendor's real-time feed into the lake, its gaps repaired over REST.

An edge like the scheduler: it uses vendors, the lake and tasks; only edges import it (the
`etl record` command, and the scheduler for `action = "record"` jobs: one recorder, one path).
Modules: ``feeds`` (each vendor's wire form), ``stage`` (rows and live 1m bars waiting for
the next commit), ``run`` (connections, heartbeats, reconnects, gaps, repairs, status),
``start`` (building a recorder from a selection, resuming where the lake ends).
"""

from etl.recorder.start import record

__all__ = ["record"]
