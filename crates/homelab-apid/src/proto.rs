//! Generated protobuf and gRPC types for the Talos API subset in `proto/` (packages `common`,
//! `machine`, `cosi.resource`, `resource.config`, `google.rpc`). The module tree mirrors the proto packages so generated paths resolve.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// `common` package: per-node `Metadata` and the `Data` stream chunk.
pub mod common {
    tonic::include_proto!("common");
}

/// `machine` package: `MachineService` client (and server with the `server` feature).
pub mod machine {
    tonic::include_proto!("machine");
}

/// `google.rpc` package: the standard `Status` error model.
pub mod google {
    /// `google.rpc`.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// `cosi` packages.
pub mod cosi {
    /// `cosi.resource`: the COSI `State` service client (and server with the `server` feature).
    pub mod resource {
        tonic::include_proto!("cosi.resource");
    }
}

/// Talos resource spec packages.
pub mod resource {
    /// `resource.config`: the `MachineConfigs.config.talos.dev` spec.
    pub mod config {
        tonic::include_proto!("resource.config");
    }
}
