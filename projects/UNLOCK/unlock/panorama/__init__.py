"""Equirectangular (360°) geometry: the seam at ±180°, wrap-around padding and inference,
perspective (tangent-plane) views. The seam conventions are in docs/design.md "Seamless 360°"."""
