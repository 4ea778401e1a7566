//! Compiles `trellis2/**/*.proto` with protox (pure Rust: no protoc on the build machine) and
//! generates prost messages + tonic clients/servers, plus the descriptor set for reflection.

const PROTOS: &[&str] = &[
    "trellis2/common/v1/common.proto",
    "trellis2/rmbg/v1/rmbg.proto",
    "trellis2/dinov3/v1/dinov3.proto",
    "trellis2/flow/v1/flow.proto",
    "trellis2/mesh/v1/mesh.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("trellis2_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
