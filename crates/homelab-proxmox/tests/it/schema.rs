//! The create request for the reference VM against the official PVE schemas (8.4 and 9.1), read from
//! `testdata/schemas/proxmox/`, not from the simulator's embedded copy.

use std::collections::BTreeMap;

use homelab_sim::proxmox::Schema;

use crate::support::{reference_vm, testdata};

fn official(file: &str) -> Schema {
    let path = testdata().join("schemas/proxmox").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("schema json");
    Schema::from_value(&json).expect("schema")
}

fn create_params() -> BTreeMap<String, String> {
    let spec = reference_vm(9001, "local:iso/talos-v1.12.4-metal-amd64-secureboot.iso");
    let mut params: BTreeMap<String, String> = spec.to_create_params().into_iter().collect();
    params.insert("node".into(), "pve".into());
    params
}

#[test]
fn the_reference_vm_create_request_passes_both_official_schemas() {
    for file in [
        "pve8.4-api-selected-endpoints.json",
        "pve9.1.3-api-selected-endpoints.json",
    ] {
        let schema = official(file);
        let params = create_params();
        assert_eq!(
            params["efidisk0"],
            "local-lvm:1,efitype=4m,pre-enrolled-keys=0"
        );
        assert_eq!(params["tpmstate0"], "local-lvm:1,version=v2.0");
        assert_eq!(params["net0"], "virtio=BC:24:11:CA:FE:01,bridge=vmbr0");
        assert_eq!(params["boot"], "order=scsi0;ide2");
        assert_eq!(
            params["ide2"],
            "local:iso/talos-v1.12.4-metal-amd64-secureboot.iso,media=cdrom"
        );
        schema
            .validate_endpoint("POST /nodes/{node}/qemu", &params)
            .unwrap_or_else(|e| panic!("{file}: {e:?}"));
    }
}

#[test]
fn a_malformed_reference_request_fails_both_official_schemas() {
    for file in [
        "pve8.4-api-selected-endpoints.json",
        "pve9.1.3-api-selected-endpoints.json",
    ] {
        let schema = official(file);
        let mut params = create_params();
        params.insert("efidisk0".into(), "local-lvm:1,efitype=8m".into());
        params.insert("machinetype".into(), "q35".into());
        let errors = schema
            .validate_endpoint("POST /nodes/{node}/qemu", &params)
            .expect_err("invalid");
        assert_eq!(
            errors["efidisk0"],
            "invalid format - format error\nefidisk0.efitype: value '8m' does not have a value in the enumeration '2m, 4m'\n"
        );
        assert!(errors.contains_key("machinetype"));
    }
}
