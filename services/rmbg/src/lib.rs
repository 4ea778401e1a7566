//! Background-removal service
