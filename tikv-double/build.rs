//! Generates the PD and TiKV gRPC *server* stubs (tonic 0.10, prost 0.12) from the `.proto` files
//! tikv-client 0.4.0 ships, copied unmodified into `proto/` (see `proto/README.md`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    let protos = [dir.join("pdpb.proto"), dir.join("tikvpb.proto")];
    let includes = [dir.clone(), dir.join("include")];
    println!("cargo:rerun-if-changed={}", dir.display());
    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        // Every RPC we do not model answers `Unimplemented` (tonic-build 0.10.2 writes the defaults).
        .generate_default_stubs(true)
        .include_file("protos.rs")
        .compile(&protos, &includes)?;
    Ok(())
}
