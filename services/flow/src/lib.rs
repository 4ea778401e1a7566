//! Flow-sampling service
