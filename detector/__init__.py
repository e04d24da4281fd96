"""Images, video and rasters -> geotagged litter detections.

Importing this package does not import torch or ultralytics; the model adapter is loaded only when
detection runs.
"""
