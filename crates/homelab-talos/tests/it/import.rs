//! Recovering the secrets bundle from a control plane's machine config (what `import` will read).

use homelab_talos::import::bundle_from_machine_config;
use homelab_talos::machine_config::{Role, render};

use super::machine_config::input;
use super::{generated_bundle, talos_fixture};

#[test]
fn a_rendered_control_plane_config_gives_back_its_bundle() {
    let bundle = generated_bundle();
    let cp = render(
        &input(
            Role::ControlPlane,
            homelab_talos::machine_config::Encryption::Tpm,
        ),
        bundle,
    )
    .unwrap()
    .to_yaml()
    .unwrap();
    let recovered = bundle_from_machine_config(&cp).unwrap();
    let mut want = bundle.clone();
    want.certs.admin = None;
    assert_eq!(recovered, want);

    let worker = render(
        &input(Role::Worker, homelab_talos::machine_config::Encryption::Tpm),
        bundle,
    )
    .unwrap()
    .to_yaml()
    .unwrap();
    let err = bundle_from_machine_config(&worker).unwrap_err();
    assert!(err.to_string().contains("control plane"), "{err}");
}

#[test]
fn talos_own_control_plane_config_gives_its_ids_and_tokens() {
    let text = talos_fixture("configpatcher/testdata/patchdelete/controlplane_orig.yaml");
    let bundle = bundle_from_machine_config(&text).unwrap();
    assert_eq!(
        bundle.cluster.id.expose(),
        "0raF93qnkMvF-FZNuvyGozXNdLiT2FOWSlyBaW4PR-w="
    );
    assert_eq!(
        bundle.secrets.bootstraptoken.expose(),
        "inn7ol.u4ehnti8qyls9ymo"
    );
    assert_eq!(bundle.trustdinfo.token.expose(), "d8cwfa.eyvpi0xwxyarbfid");
    assert!(bundle.certs.os.crt.contains("BEGIN CERTIFICATE"));
}
