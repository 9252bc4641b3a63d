//! Generates the prost messages and tonic services from `proto/*.proto`,
//! with the protoc that `protoc-bin-vendored` ships (no system protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let protos = [
        "proto/metapb.proto",
        "proto/pdpb.proto",
        "proto/kvrpcpb.proto",
        "proto/raft_serverpb.proto",
        "proto/raft_cmdpb.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    tonic_prost_build::configure()
        .bytes(".")
        .compile_protos(&protos, &["proto"])?;
    Ok(())
}
