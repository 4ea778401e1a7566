//! Protobuf contracts of the trellis2 services (`trellis2.<service>.v1`) and the small helpers both
//! ends of a call need: explicit message-size limits, chunking of large payloads, tensor byte
//! views, and the mapping between [`ServiceError`] and gRPC statuses.
//!
//! The `.proto` files live in `proto/trellis2/<service>/v1/` and are compiled by `build.rs` with
//! protox (no system protoc).

pub mod chunk;
pub mod client;
pub mod error;
pub mod limits;
pub mod progress;
pub mod server;
pub mod tensor;

pub use error::{ErrorCode, ServiceError};
pub use progress::ProgressSink;

/// `trellis2.common.v1`: images, tensors, latents, meshes, progress, errors, service info.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("trellis2.common.v1");
    }
}

/// `trellis2.rmbg.v1`: background removal.
pub mod rmbg {
    pub mod v1 {
        tonic::include_proto!("trellis2.rmbg.v1");
    }
}

/// `trellis2.dinov3.v1`: image features.
pub mod dinov3 {
    pub mod v1 {
        tonic::include_proto!("trellis2.dinov3.v1");
    }
}

/// `trellis2.flow.v1`: flow sampling.
pub mod flow {
    pub mod v1 {
        tonic::include_proto!("trellis2.flow.v1");
    }
}

/// `trellis2.mesh.v1`: mesh extraction and export.
pub mod mesh {
    pub mod v1 {
        tonic::include_proto!("trellis2.mesh.v1");
    }
}

/// Encoded `FileDescriptorSet` of every trellis2 proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/trellis2_descriptor.bin"));

/// Fully qualified gRPC service names, as used by the health service.
pub mod service_names {
    pub const RMBG: &str = "trellis2.rmbg.v1.BackgroundRemoval";
    pub const DINOV3: &str = "trellis2.dinov3.v1.Dinov3";
    pub const FLOW: &str = "trellis2.flow.v1.Flow";
    pub const MESH: &str = "trellis2.mesh.v1.Mesh";
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn descriptor_set_names_every_service() {
        let fds = prost_types_shim::decode(FILE_DESCRIPTOR_SET);
        for name in [
            "trellis2/common/v1/common.proto",
            "trellis2/rmbg/v1/rmbg.proto",
            "trellis2/dinov3/v1/dinov3.proto",
            "trellis2/flow/v1/flow.proto",
            "trellis2/mesh/v1/mesh.proto",
        ] {
            assert!(
                fds.contains(&name.to_string()),
                "{name} missing from {fds:?}"
            );
        }
    }

    /// Decodes just the file names of a FileDescriptorSet (field 1 = file, its field 1 = name)
    /// without depending on prost-types.
    mod prost_types_shim {
        use prost::Message;

        #[derive(Clone, PartialEq, Message)]
        struct FileDescriptorSet {
            #[prost(message, repeated, tag = "1")]
            file: Vec<FileDescriptor>,
        }
        #[derive(Clone, PartialEq, Message)]
        struct FileDescriptor {
            #[prost(string, optional, tag = "1")]
            name: Option<String>,
        }

        pub fn decode(bytes: &[u8]) -> Vec<String> {
            FileDescriptorSet::decode(bytes)
                .expect("valid descriptor set")
                .file
                .into_iter()
                .filter_map(|f| f.name)
                .collect()
        }
    }

    #[test]
    fn latents_round_trip_through_the_wire_format() {
        let l = common::v1::Latents {
            model_id: "m".into(),
            resolution: 64,
            coords: Some(tensor::dense_i32(&[1, 4], &[0, 1, 2, 3])),
            shape_slat: Some(tensor::dense_f32(&[1, 2], &[0.5, -1.0])),
            tex_slat: None,
        };
        let back = common::v1::Latents::decode(l.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, l);
    }
}
