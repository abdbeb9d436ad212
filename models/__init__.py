"""The step classifier: torch-free runtime (encoder, features, head), export, training, fine-tune.

See docs/classifier.md. `default/` holds the shipped model (card.json + head.npz), package data.
"""
