//! DINOv3 image-feature service
