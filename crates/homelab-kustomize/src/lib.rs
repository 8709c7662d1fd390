//! A native kustomize: builds a kustomization directory into the exact bytes `kubectl kustomize` (kustomize
//! v5.5.0) prints, without Go tools installed.
//!
//! Covered: resources (files, directories), components, namespace, namePrefix/nameSuffix, labels and
//! commonLabels, commonAnnotations, patches (strategic merge and JSON 6902, with target selectors),
//! patchesStrategicMerge, patchesJson6902, images, replicas, configMapGenerator/secretGenerator (hash
//! suffixes, name-reference rewriting), generatorOptions, replacements, sortOptions and the load restrictor.
//! Not covered (an explicit error naming the field): helmCharts, remote resources, vars, openapi, crds,
//! configurations, transformers/generators/validators plugins, buildMetadata.
//!
//! ```no_run
//! let out = homelab_kustomize::build_dir(std::path::Path::new("kubernetes/apps"), &Default::default())?;
//! print!("{}", out.to_yaml()?);
//! # Ok::<(), homelab_kustomize::Error>(())
//! ```

pub mod yaml;

mod build;
mod error;
pub mod fieldspec;
mod generator;
mod json6902;
pub mod kustomization;
mod loader;
mod nameref;
mod openapi;
mod replacements;
pub mod resource;
mod select;
mod smp;
mod sort;
mod transform;

pub use build::{Options, Output, build_dir, build_kustomization, resources_from_text};
pub use error::{Error, Result};
pub use loader::LoadRestrictor;
pub use resource::Resource;
