"""Prediction with a trained model: the submission layout, group-batched inference for the group
methods, and the pseudo labels of self-training stages. Imports torch and MMSegmentation."""
