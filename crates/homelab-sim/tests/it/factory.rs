//! The Image Factory simulator over HTTP: schematic ids as the real factory computes them,
//! discovery endpoints and deterministic ISO downloads.

use std::net::SocketAddr;

use homelab_sim::factory::{FactoryOptions, FactorySim};
use serde_json::Value;

use crate::fixture::ok;

struct Factory {
    sim: FactorySim,
    http: reqwest::Client,
}

async fn factory() -> Factory {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = ok(
        FactorySim::start(FactoryOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)))).await,
        "factory",
    );
    Factory {
        sim,
        http: ok(reqwest::Client::builder().no_proxy().build(), "client"),
    }
}

impl Factory {
    async fn get(&self, path: &str) -> reqwest::Response {
        ok(
            self.http
                .get(format!("{}{path}", self.sim.url()))
                .send()
                .await,
            "GET",
        )
    }

    async fn post_schematic(&self, body: &str) -> reqwest::Response {
        ok(
            self.http
                .post(format!("{}/schematics", self.sim.url()))
                .body(body.to_owned())
                .send()
                .await,
            "POST",
        )
    }

    async fn schematic_id(&self, body: &str) -> String {
        let json: Value = ok(self.post_schematic(body).await.json().await, "json");
        json["id"].as_str().unwrap_or_default().to_owned()
    }
}

const SCHEMATIC: &str = "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/nfs-utils\n      - siderolabs/qemu-guest-agent\n";

#[tokio::test]
async fn schematic_post_returns_the_content_address_and_is_idempotent() {
    let f = factory().await;
    let resp = f.post_schematic(SCHEMATIC).await;
    assert_eq!(resp.status().as_u16(), 201);
    let first: Value = ok(resp.json().await, "json");
    assert_eq!(first["id"].as_str().map(str::len), Some(64));
    assert_eq!(
        f.schematic_id(SCHEMATIC).await,
        first["id"].as_str().unwrap_or_default()
    );
    assert_eq!(
        first["schematic"],
        "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/nfs-utils\n            - siderolabs/qemu-guest-agent\n"
    );
    assert_eq!(
        f.post_schematic("customization:\n  nope: 1\n")
            .await
            .status()
            .as_u16(),
        400
    );
}

#[tokio::test]
async fn versions_and_extensions_are_listed() {
    let f = factory().await;
    let versions: Value = ok(f.get("/versions").await.json().await, "json");
    assert!(
        versions
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v == "v1.12.4"))
    );
    let ext: Value = ok(
        f.get("/version/v1.12.4/extensions/official")
            .await
            .json()
            .await,
        "json",
    );
    assert!(
        ext.as_array()
            .is_some_and(|e| e.iter().any(|e| e["name"] == "siderolabs/qemu-guest-agent"))
    );
    assert_eq!(
        f.get("/version/v0.0.1/extensions/official")
            .await
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn iso_download_needs_a_known_schematic_and_is_deterministic() {
    let f = factory().await;
    let id = f.schematic_id(SCHEMATIC).await;
    let resp = f
        .get(&format!("/image/{id}/v1.12.4/metal-amd64-secureboot.iso"))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = ok(resp.bytes().await, "bytes");
    assert_eq!(
        bytes.to_vec(),
        f.sim
            .image_bytes(&id, "v1.12.4", "metal-amd64-secureboot.iso")
    );
    assert_eq!(&bytes[0x8001..0x8006], b"CD001");
    assert_eq!(
        f.sim.downloads(),
        vec![format!("{id}/v1.12.4/metal-amd64-secureboot.iso")]
    );
    let unknown = f
        .get(&format!(
            "/image/{}/v1.12.4/metal-amd64.iso",
            "0".repeat(64)
        ))
        .await;
    assert_eq!(unknown.status().as_u16(), 404);
}

#[tokio::test]
async fn every_release_an_upgrade_goes_through_is_served_and_an_unknown_one_is_a_404() {
    let f = factory().await;
    let plain = f.schematic_id("customization: {}\n").await;
    let with_extensions = f.schematic_id(SCHEMATIC).await;
    for id in [&plain, &with_extensions] {
        for version in ["v1.11.6", "v1.12.4", "v1.12.11", "v1.13.9"] {
            let resp = f
                .get(&format!(
                    "/image/{id}/{version}/nocloud-amd64-secureboot.iso"
                ))
                .await;
            assert_eq!(resp.status().as_u16(), 200, "{id} {version}");
        }
    }
    let unknown = f
        .get(&format!("/image/{plain}/v1.13.99/nocloud-amd64.iso"))
        .await;
    assert_eq!(unknown.status().as_u16(), 404);
}
