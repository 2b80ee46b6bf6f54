"""The long-running service: camera workers, alert delivery and retention under one supervisor."""
