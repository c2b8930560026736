"""The engine: data, models, training, saving and inspection. It never imports Qt."""
