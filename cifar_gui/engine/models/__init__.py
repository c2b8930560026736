"""The models: the variants, saving and loading, inspection, predictions, export."""
