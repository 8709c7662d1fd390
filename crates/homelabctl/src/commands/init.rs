//! `homelabctl init`: scaffold a new homelab repository without touching anything that already exists.

use crate::ExitStatus;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use homelab_config::template::{self, InitValues};
use homelab_fs::Mode;
use miette::{IntoDiagnostic, WrapErr, miette};

use super::Global;
use crate::cli::InitArgs;

/// The repository-local age identity (gitignored), as in the original system; named where the identity
/// lookup (`homelab_sops::Identities::discover`) reads it.
pub const AGE_KEY_FILE: &str = homelab_sops::REPO_KEY_FILE;

struct Planned {
    path: PathBuf,
    contents: Vec<u8>,
    mode: u32,
}

pub fn run(_global: &Global, args: &InitArgs) -> miette::Result<ExitStatus> {
    write_repository(
        &args.dir,
        &InitValues::reference(),
        &args.age_recipients,
        args.force,
    )?;
    Ok(ExitStatus::Success)
}

/// Writes a new repository for `values` into `dir` (all or nothing; never over existing files unless
/// `force`, never over an age identity). Also used by `demo`.
pub fn write_repository(
    dir: &Path,
    values: &InitValues,
    age_recipients: &[String],
    force: bool,
) -> miette::Result<()> {
    std::fs::create_dir_all(dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let (recipients, new_identity) = recipients(dir, age_recipients)?;
    let mut files = scaffold(dir, values, &recipients)?;
    if let Some(identity) = &new_identity {
        files.push(Planned {
            path: dir.join(AGE_KEY_FILE),
            contents: identity.clone().into_bytes(),
            mode: 0o600,
        });
    }
    let existing: Vec<String> = files
        .iter()
        .filter(|f| f.path.exists())
        .map(|f| f.path.display().to_string())
        .collect();
    if !existing.is_empty() && !force {
        return Err(miette!(
            help = "nothing was written; pass --force to overwrite these files, or init into an empty directory",
            "refusing to overwrite existing files: {}",
            existing.join(", ")
        ));
    }
    for file in &files {
        if let Some(parent) = file.path.parent() {
            std::fs::create_dir_all(parent).into_diagnostic()?;
        }
        homelab_fs::write(&file.path, &file.contents, Mode::Exact(file.mode))
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write {}", file.path.display()))?;
        outln!("created {}", file.path.display())?;
    }
    if new_identity.is_some() {
        outln!(
            "generated an age identity in {} (gitignored; back it up: it decrypts every secret)",
            dir.join(AGE_KEY_FILE).display()
        )?;
    }
    outln!("secrets are encrypted to: {}", recipients.join(", "))?;
    outln!(
        "next: edit {}, then run `homelabctl validate`",
        dir.join(homelab_config::FILE_NAME).display()
    )?;
    Ok(())
}

/// The files `init` writes for `values`, encrypting to `recipients`: the repository files and the Flux
/// tree generated from the rendered homelab.yaml.
fn scaffold(
    dir: &Path,
    values: &InitValues,
    recipients: &[String],
) -> miette::Result<Vec<Planned>> {
    let file = |name: &Path, contents: String| Planned {
        path: dir.join(name),
        contents: contents.into_bytes(),
        mode: 0o644,
    };
    let homelab_yaml = template::homelab_yaml(values);
    let config = homelab_config::parse(&homelab_yaml, None)
        .map_err(|e| {
            miette!(
                "the generated {} does not validate: {e}",
                homelab_config::FILE_NAME
            )
        })?
        .config;
    let mut files = vec![
        file(Path::new(homelab_config::FILE_NAME), homelab_yaml),
        file(Path::new(".sops.yaml"), template::sops_yaml(recipients)),
        file(Path::new(".gitignore"), template::GITIGNORE.to_string()),
        file(
            Path::new("homelab.schema.json"),
            super::schema::schema_text() + "\n",
        ),
        file(
            Path::new(".github/workflows/check.yml"),
            homelab_workstation::github_workflow().to_string(),
        ),
    ];
    if config.gitops.is_some() {
        let tree = homelab_flux::tree(&config)
            .map_err(|e| miette!("cannot generate the Flux tree: {e}"))?;
        files.extend(tree.into_iter().map(|f| file(&f.path, f.contents)));
    }
    Ok(files)
}

/// The age recipients to encrypt to, and a newly generated identity file's text when one was made.
pub(super) fn recipients(
    dir: &Path,
    given: &[String],
) -> miette::Result<(Vec<String>, Option<String>)> {
    if !given.is_empty() {
        for key in given {
            age::x25519::Recipient::from_str(key).map_err(|e| {
                miette!(
                    help = "an age public key starts with age1",
                    "invalid --age-recipient `{key}`: {e}"
                )
            })?;
        }
        return Ok((given.to_vec(), None));
    }
    let key_file = dir.join(AGE_KEY_FILE);
    if key_file.exists() {
        let text = std::fs::read_to_string(&key_file)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read {}", key_file.display()))?;
        let identity = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .and_then(|l| age::x25519::Identity::from_str(l).ok())
            .ok_or_else(|| {
                miette!(
                    help = "remove it or fix it; homelabctl never overwrites an identity",
                    "{} holds no age identity",
                    key_file.display()
                )
            })?;
        return Ok((vec![identity.to_public().to_string()], None));
    }
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let text = format!(
        "# created by homelabctl init\n# public key: {public}\n{}\n",
        identity.to_string().expose_secret()
    );
    Ok((vec![public], Some(text)))
}
