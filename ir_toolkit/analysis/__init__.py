"""Detections, timeline, actor graph, scoping."""
