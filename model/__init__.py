"""Lavida-O network, checkpoint loading and inference."""
