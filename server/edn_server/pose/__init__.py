"""Pose pipeline: detect → smooth → normalize → render label images."""
