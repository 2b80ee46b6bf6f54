"""Video sources: decoded frames with real timestamps."""
