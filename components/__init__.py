"""Pure building blocks of corrvos: data, model, losses, training step, inference, metrics."""
