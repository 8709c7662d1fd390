//! The whole flow over real sockets against the in-process lab (Proxmox VE, Image Factory and Talos
//! simulators), through the real clients.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use homelab_engine::adapters::{factory::Factory, kube::Kube, proxmox::Proxmox, talos::Talos};
use homelab_engine::events::{Event, EventSink};
use homelab_engine::flow::{Engine, Timeouts};
use homelab_engine::talos_render::TalosRenderer;
use homelab_proxmox::{ApiToken, Client, ClientOptions, Fingerprint, TlsTrust, WaitOptions};
use homelab_sim::lab::{Lab, LabOptions};
use homelab_talos::secrets::SecretsBundle;

pub struct World {
    pub lab: Lab,
    pub config: homelab_config::Config,
    pub proxmox: Proxmox,
    pub factory: Factory,
    pub talos: Talos,
    pub kube: Kube,
    pub renderer: TalosRenderer,
    pub state: tempfile::TempDir,
    pub events: Arc<Mutex<Vec<Event>>>,
}

pub fn homelab_yaml(lab: &Lab, subnet: u8) -> String {
    let info = lab.info();
    format!(
        "proxmox:\n  endpoint: {}\n  node: {}\n  token_id: \"{}\"\n  tls:\n    fingerprint: \"{}\"\nimage:\n  factory: {}\n\
         nodes:\n  - name: talos-cp-01\n    vm_id: 100\n    network:\n      mac: \"BC:24:11:CA:FE:{subnet:02X}\"\n      address: 127.0.{subnet}.100/24\n      gateway: 127.0.{subnet}.1\n",
        info.proxmox_endpoint, info.proxmox_node, info.token_id, info.fingerprint, info.factory_url
    )
}

impl World {
    pub async fn start(subnet: u8) -> Self {
        Self::start_with(subnet, homelab_yaml).await
    }

    /// A lab on 127.0.`subnet`.0/24 and the homelab.yaml `yaml` writes for it.
    pub async fn start_with(subnet: u8, yaml: impl FnOnce(&Lab, u8) -> String) -> Self {
        Self::start_lab(subnet, LabOptions::fast(subnet), yaml).await
    }

    /// A world whose lab is set up by `options` (timings, faults); addresses in `127.0.<subnet>.0/24`.
    pub async fn start_with_options(subnet: u8, options: LabOptions) -> Self {
        Self::start_lab(subnet, options, homelab_yaml).await
    }

    pub async fn start_lab(
        subnet: u8,
        options: LabOptions,
        yaml: impl FnOnce(&Lab, u8) -> String,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let lab = Lab::start(options).await.expect("lab starts");
        let text = yaml(&lab, subnet);
        Self::with_lab_yaml(lab, &text, SecretsBundle::generate().expect("bundle"))
    }

    /// A world around a running lab, with the cluster identity `bundle`.
    pub fn with_lab(lab: Lab, subnet: u8, bundle: SecretsBundle) -> Self {
        let text = homelab_yaml(&lab, subnet);
        Self::with_lab_yaml(lab, &text, bundle)
    }

    /// A world around a running lab, its homelab.yaml `text` and the cluster identity `bundle`.
    pub fn with_lab_yaml(lab: Lab, text: &str, bundle: SecretsBundle) -> Self {
        let config = homelab_config::parse(text, None)
            .expect("valid config")
            .config;
        let info = lab.info();
        let token =
            ApiToken::new(info.token_id.clone(), info.token_secret.clone().into()).expect("token");
        let mut opts = ClientOptions::new(info.proxmox_endpoint.clone(), token);
        opts.trust =
            TlsTrust::Fingerprint(Fingerprint::parse(&info.fingerprint).expect("fingerprint"));
        let proxmox = Proxmox {
            client: Client::new(opts).expect("client"),
            wait: WaitOptions {
                timeout: Duration::from_secs(30),
                ..WaitOptions::default()
            },
        };
        let mut talos = Talos::from_bundle(&bundle).expect("talos credentials");
        // Before the bootstrap the simulated EtcdMemberList blocks until this deadline, as Talos does.
        talos.etcd_deadline = Duration::from_millis(300);
        Self {
            factory: Factory::new(&config).expect("factory"),
            renderer: TalosRenderer {
                bundle,
                base_dir: PathBuf::from("."),
            },
            lab,
            config,
            proxmox,
            talos,
            kube: Kube::default(),
            state: tempfile::tempdir().expect("tempdir"),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn engine(&self) -> Engine<'_, Proxmox, Factory, Talos, Kube> {
        let sink = self.events.clone();
        Engine {
            config: &self.config,
            hypervisor: &self.proxmox,
            factory: &self.factory,
            talos: &self.talos,
            kube: &self.kube,
            renderer: &self.renderer,
            state_dir: self.state.path().to_path_buf(),
            events: EventSink::new(move |e| sink.lock().expect("lock").push(e.clone())),
            timeouts: Timeouts {
                agent: Duration::from_secs(20),
                install: Duration::from_secs(30),
                kubernetes: Duration::from_secs(30),
                drain: Duration::from_secs(30),
                bootstrap: Duration::from_secs(30),
                poll: Duration::from_millis(100),
                retries: 4,
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_against_the_simulators_from_nothing_then_nothing_to_change() {
    let w = World::start(41).await;
    let plan = w.engine().plan().await.expect("plan");
    assert!(plan.has_changes());
    let done = w
        .engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge: {e}\n{:?}", w.events.lock().expect("lock")));
    assert!(
        String::from_utf8_lossy(&done.kubeconfig).contains("server: https://127.0.41.100:6443")
    );
    assert_eq!(w.lab.proxmox.vms().len(), 1);
    let node = w.lab.node(100).expect("node booted");
    assert!(node.is_bootstrapped());
    let again = w.engine().plan().await.expect("plan");
    assert!(!again.has_changes(), "{again:?}");
    w.engine().converge(false).await.expect("second apply");
    assert_eq!(
        w.lab.proxmox.task_count("qmcreate"),
        1,
        "one VM ever created"
    );
    w.engine().destroy(true, true).await.expect("destroy");
    assert!(w.lab.proxmox.vms().is_empty());
}
