"""One router per concern; server/app.py assembles them."""
