"""Batch and single-video pipelines built from video_lstm pieces."""
