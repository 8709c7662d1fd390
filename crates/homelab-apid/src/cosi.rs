//! Reading Talos resources over apid through COSI's `cosi.resource.State` service, as `talosctl get`
//! does: one resource by namespace, type and id, or every resource of a type; and the node's running
//! machine configuration (`MachineConfigs.config.talos.dev` `v1alpha1` in namespace `config`), whose
//! spec carries the config exactly as it was submitted.
//!
//! Talos serves `Get`/`List` to `os:reader` and up, but a *sensitive* resource type (the machine config
//! is one: it holds the cluster's CA keys) only to `os:admin`; an unregistered type is refused with
//! `PermissionDenied` ("resource type … is not supported"), a missing id answers `NotFound`.

use prost::Message;
use tonic::Code;
use zeroize::Zeroizing;

use crate::client::{ApidClient, MAX_MESSAGE};
use crate::error::ApidError;
use crate::proto::cosi::resource::{self as pb, state_client::StateClient};
use crate::proto::resource::config::MachineConfigSpec;

/// Namespace of Talos' configuration resources.
pub const CONFIG_NAMESPACE: &str = "config";
/// The machine configuration resource type.
pub const MACHINE_CONFIG_TYPE: &str = "MachineConfigs.config.talos.dev";
/// The id of the machine configuration the running OS applied (`persistent` is the one on disk).
pub const MACHINE_CONFIG_ACTIVE_ID: &str = "v1alpha1";

/// One COSI resource as apid returns it.
#[derive(Clone, PartialEq, Eq)]
pub struct Resource {
    /// namespace
    pub namespace: String,
    /// resource type, e.g. `MachineConfigs.config.talos.dev`
    pub kind: String,
    /// resource id
    pub id: String,
    /// resource version
    pub version: String,
    /// the typed spec, protobuf-encoded (may hold secrets: never log it)
    pub proto_spec: Zeroizing<Vec<u8>>,
    /// the spec rendered as YAML (may hold secrets: never log it)
    pub yaml_spec: Zeroizing<String>,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The spec is left out on purpose: a sensitive resource's spec is secret.
        f.debug_struct("Resource")
            .field("namespace", &self.namespace)
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Resource {
    fn from_proto(r: pb::Resource) -> Self {
        let md = r.metadata.unwrap_or_default();
        let spec = r.spec.unwrap_or_default();
        Self {
            namespace: md.namespace,
            kind: md.r#type,
            id: md.id,
            version: md.version,
            proto_spec: Zeroizing::new(spec.proto_spec),
            yaml_spec: Zeroizing::new(spec.yaml_spec),
        }
    }
}

impl ApidClient {
    fn state(&self) -> StateClient<tonic::transport::Channel> {
        StateClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// One resource; `None` when the type exists but no resource has that id (`NotFound`).
    pub async fn resource_get(
        &mut self,
        namespace: &str,
        kind: &str,
        id: &str,
    ) -> Result<Option<Resource>, ApidError> {
        const M: &str = "cosi.resource.State/Get";
        let req = self.request(pb::GetRequest {
            namespace: namespace.into(),
            r#type: kind.into(),
            id: id.into(),
            options: None,
        });
        match self.state().get(req).await {
            Ok(resp) => Ok(resp.into_inner().resource.map(Resource::from_proto)),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(self.fail(M, &status)),
        }
    }

    /// Every resource of `kind` in `namespace`.
    pub async fn resource_list(
        &mut self,
        namespace: &str,
        kind: &str,
    ) -> Result<Vec<Resource>, ApidError> {
        const M: &str = "cosi.resource.State/List";
        let req = self.request(pb::ListRequest {
            namespace: namespace.into(),
            r#type: kind.into(),
            options: None,
        });
        let mut stream = self
            .state()
            .list(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        let mut out = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(item)) => out.extend(item.resource.map(Resource::from_proto)),
                Ok(None) => return Ok(out),
                Err(status) => return Err(self.fail(M, &status)),
            }
        }
    }

    /// The machine configuration the node runs, byte for byte as it was applied (`talosctl get
    /// machineconfig -o yaml`). It holds the cluster's secrets: Talos serves it to `os:admin` only.
    pub async fn running_machine_config(&mut self) -> Result<Zeroizing<Vec<u8>>, ApidError> {
        let resource = self
            .resource_get(
                CONFIG_NAMESPACE,
                MACHINE_CONFIG_TYPE,
                MACHINE_CONFIG_ACTIVE_ID,
            )
            .await?
            .ok_or(ApidError::EmptyResponse {
                endpoint: self.endpoint(),
                method: "cosi.resource.State/Get MachineConfigs.config.talos.dev",
            })?;
        machine_config_bytes(&resource).map_err(|reason| ApidError::Rpc {
            endpoint: self.endpoint(),
            method: "cosi.resource.State/Get",
            code: Code::DataLoss,
            message: reason,
        })
    }
}

/// The config bytes of a `MachineConfigs.config.talos.dev` resource: the protobuf spec's
/// `yaml_marshalled`, or (from a server that sends only the YAML rendering) the YAML string it holds.
pub fn machine_config_bytes(resource: &Resource) -> Result<Zeroizing<Vec<u8>>, String> {
    if !resource.proto_spec.is_empty() {
        let spec = MachineConfigSpec::decode(resource.proto_spec.as_slice())
            .map_err(|e| format!("the MachineConfig spec is not a MachineConfigSpec: {e}"))?;
        return Ok(Zeroizing::new(spec.yaml_marshalled));
    }
    if resource.yaml_spec.is_empty() {
        return Err("the MachineConfig resource has an empty spec".into());
    }
    Err(
        "the MachineConfig resource carries only a YAML spec; homelabctl reads the protobuf spec"
            .into(),
    )
}

/// Encodes a machine config as the resource spec Talos sends (for servers: the simulator).
pub fn machine_config_proto_spec(config: &[u8]) -> Vec<u8> {
    MachineConfigSpec {
        yaml_marshalled: config.to_vec(),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_comes_back_byte_for_byte_from_the_proto_spec() {
        let config = b"version: v1alpha1\nmachine:\n    type: worker\n";
        let resource = Resource {
            namespace: CONFIG_NAMESPACE.into(),
            kind: MACHINE_CONFIG_TYPE.into(),
            id: MACHINE_CONFIG_ACTIVE_ID.into(),
            version: "1".into(),
            proto_spec: Zeroizing::new(machine_config_proto_spec(config)),
            yaml_spec: Zeroizing::new(String::new()),
        };
        assert_eq!(
            machine_config_bytes(&resource).expect("decodes").as_slice(),
            config
        );
        assert!(
            !format!("{resource:?}").contains("worker"),
            "Debug hides the spec"
        );
    }

    #[test]
    fn an_empty_spec_is_an_error() {
        let resource = Resource {
            namespace: String::new(),
            kind: String::new(),
            id: String::new(),
            version: String::new(),
            proto_spec: Zeroizing::new(Vec::new()),
            yaml_spec: Zeroizing::new(String::new()),
        };
        assert!(machine_config_bytes(&resource).is_err());
    }
}
