"""Writing and transforming video files."""
