"""Detection, motion gating and model resolution."""
