"""Monitors (SPEC §4): a capture on a schedule, compared with the previous good one, a signed
webhook when the page changed.  models → store (SQLite or Redis) → service (the API's side) and
scheduler → runs (one run: charge, capture, compare, record, notify)."""
