//! Compiles the hand-written Talos and COSI protos with protox (pure Rust, no protoc) and generates the tonic
//! client, plus the server traits behind the `server` feature (used by the simulator).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/machine/machine.proto",
        "proto/cosi/resource.proto",
        "proto/resource/config/config.proto",
    ];
    for path in [
        "proto/machine/machine.proto",
        "proto/cosi/resource.proto",
        "proto/resource/config/config.proto",
        "proto/common/common.proto",
        "proto/google/rpc/status.proto",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .server_mod_attribute(".", "#[cfg(feature = \"server\")]")
        .compile_fds(fds)?;
    Ok(())
}
