"""The browser UI: static pages served by the API process (no build step, no CDN)."""
