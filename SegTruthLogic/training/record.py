"""The file in a trained model's folder that records its plan, settings and history, named once for the trainer
and for the front ends' runner (which must not import the trainer's PyTorch)."""

TRAINING_RECORD = "training.json"
