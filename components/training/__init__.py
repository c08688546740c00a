"""The training step's inputs and helpers shared by the model, the losses and the trainer."""
