"""Benchmarks and the soak test of the Digis API on the local platform (`scripts/bench`, `scripts/soak`).

Layout: `run` (the CLI: one table, JSON, PNG, Markdown), `platform` (its own database, Upstash gateway, soketi
and Vercel-style router on loopback), `seed` (set-based seeding, reused across runs), `client` (a lean HTTP/1.1
load client), one module per benchmark row, `report` (table, JSON, PNG), `soak` (the call flow under load).
"""
