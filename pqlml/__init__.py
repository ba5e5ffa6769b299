"""pqlml."""
