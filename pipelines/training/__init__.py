"""Ray Train wiring: the per-worker training function and the stage driver around it."""
