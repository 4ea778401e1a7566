//! Protobuf contracts of the trellis2 services (trellis2.<service>.v1)
