//! The simulated COSI `cosi.resource.State` service of apid, read-only as Talos serves it to clients:
//! `Get`/`List` for `os:reader` and up (`machined.go`'s rules), a *sensitive* type only for `os:admin`,
//! `PermissionDenied` for a type Talos does not register (`resources.AccessPolicy`), `NotFound` for an id
//! that does not exist. The one type modelled is the machine configuration
//! (`MachineConfigs.config.talos.dev` in `config`: `v1alpha1` the config the OS runs, `persistent` the
//! one on disk, which a staged apply moves ahead), its spec the config bytes as they were applied.

use std::pin::Pin;

use tonic::codegen::tokio_stream::{self, Stream};
use tonic::{Request, Response, Status};

use homelab_apid::proto::cosi::resource::{self as pb, state_server::State as StateApi};
use homelab_apid::{
    CONFIG_NAMESPACE, MACHINE_CONFIG_ACTIVE_ID, MACHINE_CONFIG_TYPE, machine_config_proto_spec,
};

use super::service::{ApidService, READER};

/// The id of the machine config saved to the STATE partition.
const MACHINE_CONFIG_PERSISTENT_ID: &str = "persistent";

/// A resource type the simulator registers: its namespace and whether Talos marks it sensitive.
struct Definition {
    kind: &'static str,
    namespace: &'static str,
    sensitive: bool,
}

const DEFINITIONS: &[Definition] = &[Definition {
    kind: MACHINE_CONFIG_TYPE,
    namespace: CONFIG_NAMESPACE,
    sensitive: true,
}];

/// The COSI state service of one apid listener; authorization and node targeting are apid's own.
#[derive(Clone)]
pub(crate) struct StateService(pub(crate) ApidService);

type ListStream = Pin<Box<dyn Stream<Item = Result<pb::ListResponse, Status>> + Send + 'static>>;

impl StateService {
    /// apid's role check for the method, then Talos' access policy for the resource type.
    fn admit<T>(
        &self,
        method: &str,
        req: &Request<T>,
        namespace: &str,
        kind: &str,
    ) -> Result<(), Status> {
        self.0.authorize(method, req, READER)?;
        // The type is matched case-insensitively, as Talos looks its definition up by the lowercased name.
        let Some(def) = DEFINITIONS
            .iter()
            .find(|d| d.kind.eq_ignore_ascii_case(kind))
        else {
            return Err(Status::permission_denied(format!(
                "resource type {kind:?} is not supported"
            )));
        };
        if def.sensitive && !self.0.roles(req).iter().any(|r| r == "os:admin") {
            return Err(Status::permission_denied("not authorized"));
        }
        if def.namespace != namespace {
            return Err(Status::permission_denied(format!(
                "namespace {namespace:?} is not supported"
            )));
        }
        Ok(())
    }

    /// The machine config resources the node holds: (id, config bytes).
    fn machine_configs(&self) -> Result<Vec<(&'static str, Vec<u8>)>, Status> {
        let st = self.0.node().lock();
        let Some(inst) = st.installed.as_ref() else {
            return Err(Status::unavailable("the node is rebooting"));
        };
        let active = inst.config.raw.clone();
        let persistent = st.staged.clone().unwrap_or_else(|| active.clone());
        Ok(vec![
            (MACHINE_CONFIG_ACTIVE_ID, active),
            (MACHINE_CONFIG_PERSISTENT_ID, persistent),
        ])
    }
}

fn machine_config_resource(id: &str, config: &[u8]) -> pb::Resource {
    pb::Resource {
        metadata: Some(pb::Metadata {
            namespace: CONFIG_NAMESPACE.into(),
            r#type: MACHINE_CONFIG_TYPE.into(),
            id: id.into(),
            version: "1".into(),
            owner: String::new(),
            phase: "running".into(),
            labels: Default::default(),
            // Talos marks the spec as a YAML string (`MachineConfig` resource).
            annotations: [("talos.dev/yaml-spec".to_string(), "1".to_string())]
                .into_iter()
                .collect(),
        }),
        spec: Some(pb::Spec {
            proto_spec: machine_config_proto_spec(config),
            yaml_spec: yaml_block(config),
        }),
    }
}

/// The YAML rendering COSI adds beside the protobuf spec: the config as one literal block string
/// (`MachineConfig.MarshalYAML` returns the config text).
fn yaml_block(config: &[u8]) -> String {
    let text = String::from_utf8_lossy(config);
    let mut out = String::from("|\n");
    for line in text.lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[tonic::async_trait]
impl StateApi for StateService {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let (namespace, kind) = (&request.get_ref().namespace, &request.get_ref().r#type);
        self.admit("/cosi.resource.State/Get", &request, namespace, kind)?;
        let req = request.into_inner();
        let found = self
            .machine_configs()?
            .into_iter()
            .find(|(id, _)| *id == req.id);
        match found {
            Some((id, config)) => Ok(Response::new(pb::GetResponse {
                resource: Some(machine_config_resource(id, &config)),
            })),
            None => Err(Status::not_found(format!(
                "resource {}({}/{}@undefined) doesn't exist",
                req.r#type, req.namespace, req.id
            ))),
        }
    }

    type ListStream = ListStream;

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let (namespace, kind) = (&request.get_ref().namespace, &request.get_ref().r#type);
        self.admit("/cosi.resource.State/List", &request, namespace, kind)?;
        let items: Vec<Result<pb::ListResponse, Status>> = self
            .machine_configs()?
            .into_iter()
            .map(|(id, config)| {
                Ok(pb::ListResponse {
                    resource: Some(machine_config_resource(id, &config)),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_yaml_spec_is_the_config_as_one_literal_block() {
        assert_eq!(
            yaml_block(b"version: v1alpha1\nmachine: {}\n"),
            "|\n    version: v1alpha1\n    machine: {}\n"
        );
    }
}
