//! YAML in and out: a go-yaml v3-compatible reader and a go-yaml v2-compatible writer over [`Value`].

pub mod emit;
pub mod parse;
pub mod resolve;
pub mod value;

pub use emit::{EmitError, to_yaml};
pub use parse::{Document, ParseError, parse_documents, parse_value};
pub use value::{Map, Value};
