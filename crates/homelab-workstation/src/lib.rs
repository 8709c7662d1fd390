//! An operator's checkout and machine: the git hooks homelabctl installs (pre-commit: fast check and a scan of
//! the staged content; commit-msg: Conventional Commits), the commit-message policy itself, the age identity
//! in sops' default location, and the GitHub Actions workflow that runs `homelabctl check` on pull requests.
//!
//! It does not scan or check anything itself (the hooks call back into `homelabctl`), and it never prints.
//!
//! ```
//! use homelab_workstation::commit_msg;
//! let message = commit_msg::clean("feat(scan): detect Proxmox tokens\n# comment\n", '#');
//! assert_eq!(commit_msg::check(&message).map(|m| m.kind), Ok("feat".to_string()));
//! assert!(homelab_workstation::github_workflow().contains("homelabctl check"));
//! ```

pub mod commit_msg;
pub mod hooks;
pub mod identity;
mod workflow;

pub use workflow::github_workflow;
