//! Mesh service
