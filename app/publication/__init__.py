"""The exposure board (警示曝光): closed, verified cases a dispatcher publishes with an edited public summary."""
