"""Storage: SQL (SQLite by default) plus a media folder under one data directory."""
