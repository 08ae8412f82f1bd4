"""Open311 GeoReport v2: a public, read-only view of the exposure board's cases, and report intake for partner
platforms holding an API key."""
