//! go-yaml compatibility primitives shared by the SOPS store (`homelab-sops`), the kustomize build
//! (`homelab-kustomize`) and Talos' config encoder (`homelab-talos`), whose output must match Go programs
//! byte for byte.
//!
//! It holds only the rules they need and that are easy to get subtly wrong: Go's `strconv` number syntax
//! ([`strconv`]) and duration syntax ([`duration`]), go-yaml's plain-scalar checks that are not about a
//! value model ([`plain`]), libyaml's scalar analysis that decides between plain, quoted and block styles
//! ([`scalar`]), go-yaml's map key order ([`key_order`]), Go `encoding/json` string quoting ([`json`]),
//! what a folded block scalar reads as after kyaml writes it back ([`folded`]), and go-yaml's limit on
//! alias expansion ([`alias`]), which every YAML reader in the workspace applies so that none can be made
//! to expand a "billion laughs". It has no YAML value type, reader or writer of its own: each caller
//! keeps its own model (sops' typed values, kustomize's JSON-like tree) and its own emitter.
//!
//! ```
//! use homelab_goyaml::{plain, scalar, strconv};
//! assert_eq!(strconv::parse_int("0o17"), Some(15));
//! assert!(plain::is_old_bool("yes"));
//! assert!(!scalar::analyze("a: b").block_plain);
//! ```

pub mod alias;
pub mod duration;
pub mod folded;
pub mod json;
pub mod key_order;
pub mod plain;
pub mod scalar;
pub mod strconv;
