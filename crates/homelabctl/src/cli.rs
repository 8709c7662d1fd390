//! Command-line definitions (clap). Only argument shapes live here; behaviour lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Provision and operate a TalosOS Kubernetes homelab on Proxmox VE from one declarative `homelab.yaml`.
#[derive(Debug, Parser)]
#[command(
    name = "homelabctl",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = EXIT_STATUS_HELP
)]
pub struct Cli {
    /// Path of the homelab configuration.
    #[arg(
        long,
        global = true,
        env = "HOMELAB_CONFIG",
        default_value = "homelab.yaml",
        value_name = "FILE"
    )]
    pub config: PathBuf,

    /// Output format of every command that prints data: text for people, JSON for scripts; SARIF (for code
    /// scanning) is offered by `scan` and `check`.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = Format::Text,
        // The name before `--format` was the one way to choose: kept, hidden, so old scripts still run.
        alias = "output"
    )]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

/// The exit status table of `--help` (the same as README.md's; the codes are chosen in `main.rs`).
const EXIT_STATUS_HELP: &str = "Exit status:
  0      success
  1      a failure, findings (check, scan, validate), or an unhealthy status
  2      only with `plan --detailed-exitcode`: changes present
  64     usage error: an unknown flag, a missing or invalid argument
  128+N  stopped by signal N after cleaning up (sops edit)

Writing to a closed pipe (`homelabctl scan | head`) ends the output quietly; the exit status is the command's own.";

/// `--format`: every format any command offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// SARIF 2.1.0 (`scan` and `check` only).
    Sarif,
}

/// The formats of commands that print data but no findings (all but `scan` and `check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the kustomize build of a directory, byte for byte as `kustomize build` would.
    Build(crate::commands::build::BuildArgs),
    /// Check the repository: kustomize builds, Flux Kustomizations, manifest schemas, SOPS coverage,
    /// plaintext Secrets, homelab.yaml. Findings are grouped by file with line numbers.
    ///
    /// Exit status: 0 when there is no error, 1 when there are findings of severity error.
    Check(crate::commands::check::CheckArgs),
    /// Show what apply would change: per resource create / update / replace / no change, with field diffs
    /// (Talos config diffs redacted). With --detailed-exitcode: 0 no changes, 2 changes, 1 error.
    Plan(crate::commands::plan::PlanArgs),
    /// Converge the homelab on homelab.yaml: image, VMs, Talos config, bootstrap, Kubernetes readiness.
    ///
    /// Shows the plan and asks first (--yes without a terminal). Safe to run again after any interruption.
    Apply(crate::commands::apply::ApplyArgs),
    /// Remove the cluster's VMs (optionally resetting Talos first and deleting the ISO).
    Destroy(crate::commands::destroy::DestroyArgs),
    /// Replace one node: the old one leaves etcd (a control plane), is drained, reset and its VM deleted; a
    /// new VM with the same name, VM id, MAC and address is created, installs and joins.
    ///
    /// Refused for a control plane unless every other one is healthy. Resumable: the replacement is recorded
    /// first, so running `replace` (or `apply`) again after an interruption continues it.
    Replace(crate::commands::replace::ReplaceArgs),
    /// Health of every VM, Talos node, etcd and Kubernetes, read live.
    Status(crate::commands::status::StatusArgs),
    /// etcd of the control planes: encrypted snapshots (`snapshot`, `snapshots`), `members`, and `restore`
    /// (Talos' disaster recovery from a snapshot).
    Etcd(crate::commands::etcd::EtcdArgs),
    /// The whole flow against the built-in simulators: init, apply, status. No Proxmox needed.
    ///
    /// With --keep DIR the repository and the simulator's state stay: `homelabctl sim --state-dir
    /// DIR/.homelab/sim` brings the simulated homelab back for plan/apply/destroy there.
    Demo(crate::commands::demo::DemoArgs),
    /// Check homelab.yaml: every problem at once, with file:line:col and a hint.
    ///
    /// Exit status: 0 when valid (warnings allowed), 1 when invalid (or any warning with --strict).
    Validate(ValidateArgs),
    /// Create a new homelab repository: a commented homelab.yaml for the reference deployment, .sops.yaml,
    /// an age identity, .gitignore and the JSON Schema for editors.
    ///
    /// Refuses to overwrite any existing file unless --force; files it does not write are never touched.
    Init(InitArgs),
    /// Rewrite homelab.yaml in the canonical layout (two-space nesting, comments kept); --check only reports.
    ///
    /// Exit status with --check: 0 when formatted, 1 when `fmt` would change the file.
    Fmt(FmtArgs),
    /// Print the JSON Schema of homelab.yaml (editors use it through the modeline `init` writes).
    Schema(SchemaArgs),
    /// Talos secrets bundle and machine configuration.
    Talos(crate::commands::talos::TalosArgs),
    /// The old name of `flux add-component` (hidden; kept so scripts keep working).
    #[command(hide = true)]
    Gitops(crate::commands::flux_tree::GitopsArgs),
    /// Operate Flux without the flux CLI: sops-key, bootstrap, reconcile, and add-component (a new
    /// infrastructure component in the Flux tree, following the tree's pattern).
    Flux(crate::commands::flux::FluxArgs),
    /// SOPS files encrypted to age keys: encrypt, decrypt, edit, updatekeys (compatible with the sops CLI).
    Sops(crate::commands::sops::SopsArgs),
    /// Scan the working tree, the git history or the staged changes for secrets (exit 1 on findings).
    ///
    /// `--gitleaks-config FILE.toml` selects a gitleaks.toml; otherwise PATH/.gitleaks.toml or the built-in
    /// rules. Exit status: 0 clean, 1 findings or error.
    Scan(crate::commands::scan::ScanArgs),
    /// Git hooks: install the pre-commit and commit-msg hooks, or run the commit-message check.
    Hooks(crate::commands::hooks::HooksArgs),
    /// First-time set-up of an operator's machine and checkout: an age identity where sops looks for it
    /// (created only if missing; prints the public key), and the git hooks.
    Setup(crate::commands::setup::SetupArgs),
    /// The cluster's talosconfig and kubeconfig: `export` them SOPS-encrypted to output/, or `decrypt` them
    /// to the repository root (mode 0600, gitignored) for talosctl and kubectl.
    Config(crate::commands::config::ConfigArgs),
    /// Check the configured Proxmox: node, PVE version, the token's privileges (per major version), ISO and
    /// VM storages, bridges; each failure says how to fix it. Reads the token secret from
    /// HOMELAB_PROXMOX_TOKEN_SECRET. Exit status: 0 when nothing failed, 1 otherwise.
    Doctor(crate::commands::doctor::DoctorArgs),
    /// Run the simulated homelab in the foreground on loopback: Proxmox VE, Image Factory, a Talos node per
    /// started VM, Kubernetes. Its state is kept in DIR (restored at start, saved on every change); prints and
    /// writes DIR/sim.json (endpoint, token, fingerprint, factory URL). Stops cleanly on SIGINT/SIGTERM.
    Sim(crate::commands::sim::SimArgs),
    /// The cluster's outputs, like `terraform output`: without NAME a table (secret ones shown as
    /// `<sensitive>`); `vm_id`; `talosconfig`/`kubeconfig` printed only when standard output is not a
    /// terminal (pipe or redirect) or with --reveal.
    Output(crate::commands::output::OutputArgs),
    /// The repository's secrets.enc.yaml: `set-proxmox-token` stores the Proxmox API token secret read from
    /// standard input, encrypted.
    Secrets(crate::commands::secrets::SecretsArgs),
    /// Adopt a running cluster: read each node's machine config over apid (or from files), the secrets bundle
    /// and the VMs in Proxmox by MAC; write homelab.yaml, the bundle encrypted, patches for what homelab.yaml
    /// cannot say, and import-report.md. Never overwrites a homelab.yaml.
    Import(crate::commands::import::ImportArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create the repository in (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite files homelabctl would write that already exist.
    #[arg(long)]
    pub force: bool,
    /// Encrypt secrets to this age public key instead of generating a repository-local identity
    /// (.age-key.txt). Repeat for several recipients.
    #[arg(long = "age-recipient", value_name = "AGE_PUBLIC_KEY")]
    pub age_recipients: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Write the schema to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Report files that are not formatted (exit 1) instead of rewriting them.
    #[arg(long)]
    pub check: bool,
    /// The file to format (default: the --config file).
    pub file: Option<PathBuf>,
}
