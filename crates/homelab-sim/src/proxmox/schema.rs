//! The official PVE API schema (8.4 or 9.1, embedded from `data/proxmox/`): routing a request to its endpoint
//! and validating its parameters the way PVE's JSONSchema.pm does, with PVE's per-parameter error texts.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use super::formats::{PropError, check_named, parse_property_string};

/// Which PVE release the simulator imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PveVersion {
    /// PVE 8.4 (8.4.2 schema, `VM.Monitor` for agent calls).
    #[serde(rename = "8.4")]
    V8_4,
    /// PVE 9.1 (9.1.3 schema, `VM.GuestAgent.*`).
    #[serde(rename = "9.1")]
    V9_1,
}

impl PveVersion {
    /// `GET /version` → `version`.
    pub fn full(self) -> &'static str {
        match self {
            PveVersion::V8_4 => "8.4.2",
            PveVersion::V9_1 => "9.1.3",
        }
    }

    /// `GET /version` → `release`.
    pub fn release(self) -> &'static str {
        match self {
            PveVersion::V8_4 => "8.4",
            PveVersion::V9_1 => "9.1",
        }
    }

    /// Parses `8.4`/`9.1` (also `8`, `9`, `8.4.2`, `9.1.3`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "8" | "8.4" | "8.4.2" => Some(PveVersion::V8_4),
            "9" | "9.1" | "9.1.3" => Some(PveVersion::V9_1),
            _ => None,
        }
    }

    fn schema_json(self) -> &'static str {
        match self {
            PveVersion::V8_4 => include_str!("../../data/proxmox/pve-8.4.json"),
            PveVersion::V9_1 => include_str!("../../data/proxmox/pve-9.1.json"),
        }
    }
}

/// One endpoint of the schema.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// `METHOD /path/{param}`.
    pub key: String,
    method: String,
    segments: Vec<String>,
    pub info: Value,
}

/// The loaded schema of one PVE version.
#[derive(Debug)]
pub struct Schema {
    endpoints: Vec<Endpoint>,
}

impl Schema {
    /// Loads the embedded schema of `version`.
    pub fn load(version: PveVersion) -> Result<Schema, String> {
        let root: Value = serde_json::from_str(version.schema_json())
            .map_err(|e| format!("embedded schema: {e}"))?;
        Self::from_value(&root)
    }

    /// Builds a schema from `{"endpoints": {"METHOD /path": info}}` (the shape of the files in
    /// `shared/schemas/proxmox/*-selected-endpoints.json` too).
    pub fn from_value(root: &Value) -> Result<Schema, String> {
        let eps = root
            .get("endpoints")
            .and_then(Value::as_object)
            .ok_or("schema has no endpoints")?;
        let mut endpoints = Vec::new();
        for (key, info) in eps {
            let (method, path) = key
                .split_once(' ')
                .ok_or_else(|| format!("bad endpoint key {key}"))?;
            endpoints.push(Endpoint {
                key: key.clone(),
                method: method.to_string(),
                segments: path
                    .trim_start_matches('/')
                    .split('/')
                    .map(str::to_string)
                    .collect(),
                info: info.clone(),
            });
        }
        Ok(Schema { endpoints })
    }

    /// Finds the endpoint for `method` and a path below `/api2/json`, with the path parameters.
    pub(crate) fn route(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(&Endpoint, BTreeMap<String, String>)> {
        let parts: Vec<String> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        'eps: for ep in self.endpoints.iter().filter(|e| e.method == method) {
            if ep.segments.len() != parts.len() {
                continue;
            }
            let mut params = BTreeMap::new();
            for (seg, part) in ep.segments.iter().zip(&parts) {
                if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    if part.is_empty() {
                        continue 'eps;
                    }
                    params.insert(name.to_string(), part.clone());
                } else if seg != part {
                    continue 'eps;
                }
            }
            return Some((ep, params));
        }
        None
    }

    /// Validates a create-VM style parameter set against `METHOD /path` of this schema (for tests and tools).
    pub fn validate_endpoint(
        &self,
        key: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<(), BTreeMap<String, String>> {
        let Some(ep) = self.endpoints.iter().find(|e| e.key == key) else {
            return Err(BTreeMap::from([(
                "endpoint".to_string(),
                format!("no endpoint {key} in schema"),
            )]));
        };
        validate(&ep.info, params)
    }

    /// The property schema of one parameter of an endpoint (indexed names such as `net0` resolve to `net[n]`).
    pub fn param_schema<'a>(&'a self, key: &str, param: &str) -> Option<&'a Value> {
        let ep = self.endpoints.iter().find(|e| e.key == key)?;
        lookup_property(
            ep.info.get("parameters")?.get("properties")?.as_object()?,
            param,
        )
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Highest index for PVE's `name[n]` parameters (from the schema descriptions).
fn max_index(base: &str) -> u32 {
    match base {
        "ide" | "serial" => 3,
        "parallel" => 2,
        "sata" => 5,
        "scsi" => 30,
        "virtio" | "hostpci" => 15,
        "usb" => 13,
        "net" | "ipconfig" => 31,
        "numa" => 7,
        "virtiofs" => 9,
        _ => 255,
    }
}

fn lookup_property<'a>(props: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(p) = props.get(name) {
        return Some(p);
    }
    let digits = name.trim_start_matches(|c: char| !c.is_ascii_digit());
    let base = &name[..name.len() - digits.len()];
    if base.is_empty() || digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    if n > max_index(base) {
        return None;
    }
    props.get(&format!("{base}[n]"))
}

const NOT_IN_SCHEMA: &str =
    "property is not defined in schema and the schema does not allow additional properties";
const MISSING: &str = "property is missing and it is not optional";

/// Validates all parameters (path, query and body merged) against an endpoint's `parameters` schema.
pub(crate) fn validate(
    info: &Value,
    params: &BTreeMap<String, String>,
) -> Result<(), BTreeMap<String, String>> {
    let empty = serde_json::Map::new();
    let schema = info.get("parameters");
    let props = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let additional = schema
        .and_then(|s| s.get("additionalProperties"))
        .is_some_and(truthy);
    let mut errors = BTreeMap::new();
    for (name, value) in params {
        match lookup_property(props, name) {
            Some(p) => check_prop(name, p, value, true, &mut errors),
            None if additional => {}
            None => {
                errors.insert(name.clone(), NOT_IN_SCHEMA.to_string());
            }
        }
    }
    for (name, p) in props {
        if name.ends_with("[n]") {
            continue;
        }
        if !truthy_key(p, "optional") && !params.contains_key(name) {
            errors.insert(name.clone(), MISSING.to_string());
        }
        if params.contains_key(name)
            && let Some(req) = p.get("requires").and_then(Value::as_str)
            && !params.contains_key(req)
        {
            errors.insert(
                req.to_string(),
                format!("missing property - '{name}' requires this property"),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Checks a parsed property string against its inline format, keys reported as `prefix.key`.
pub(crate) fn check_object(
    prefix: &str,
    format: &BTreeMap<String, Value>,
    values: &BTreeMap<String, String>,
    errors: &mut BTreeMap<String, String>,
) {
    for (k, v) in values {
        let path = format!("{prefix}.{k}");
        match format.get(k) {
            Some(s) if s.get("alias").is_none() => check_prop(&path, s, v, false, errors),
            // The key alias (e.g. `model` holding `virtio`) was resolved by the parser.
            Some(_) => {}
            None => {
                errors.insert(path, NOT_IN_SCHEMA.to_string());
            }
        }
    }
    for (k, s) in format {
        if s.get("alias").is_some() {
            continue;
        }
        if !truthy_key(s, "optional") && !values.contains_key(k) {
            errors.insert(format!("{prefix}.{k}"), MISSING.to_string());
        }
        // JSONSchema.pm's `requires` holds inside property strings too (`ipconfig0: gw=…` without `ip`).
        if values.contains_key(k)
            && let Some(req) = s.get("requires").and_then(Value::as_str)
            && !values.contains_key(req)
        {
            errors.insert(
                format!("{prefix}.{req}"),
                format!("missing property - '{prefix}.{k}' requires this property"),
            );
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => s == "1" || s == "true",
        _ => false,
    }
}

fn truthy_key(p: &Value, key: &str) -> bool {
    p.get(key).is_some_and(truthy)
}

fn perl_pattern(p: &str) -> Option<Regex> {
    let p = p.replace("(?^:", "(?:").replace("(?^i:", "(?i:");
    Regex::new(&format!("^(?:{p})$")).ok()
}

fn check_prop(
    path: &str,
    schema: &Value,
    value: &str,
    top_level: bool,
    errors: &mut BTreeMap<String, String>,
) {
    let ty = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let fail = |errors: &mut BTreeMap<String, String>, msg: String| {
        errors.insert(path.to_string(), msg);
    };
    match ty {
        "integer" => {
            let ok = value.strip_prefix(['+', '-']).unwrap_or(value);
            if ok.is_empty() || !ok.chars().all(|c| c.is_ascii_digit()) {
                return fail(
                    errors,
                    format!("type check ('integer') failed - got '{value}'"),
                );
            }
        }
        "number" if value.parse::<f64>().is_err() || value.contains(['i', 'n', 'I', 'N']) => {
            return fail(
                errors,
                format!("type check ('number') failed - got '{value}'"),
            );
        }
        "boolean" => {
            let ok = if top_level {
                value == "0" || value == "1"
            } else {
                super::formats::parse_boolean(value).is_some()
            };
            if !ok {
                return fail(
                    errors,
                    format!("type check ('boolean') failed - got '{value}'"),
                );
            }
        }
        _ => {}
    }
    if matches!(ty, "integer" | "number") {
        let n: f64 = value.parse().unwrap_or(0.0);
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return fail(
                errors,
                format!("value must have a minimum value of {}", render_num(min)),
            );
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return fail(
                errors,
                format!("value must have a maximum value of {}", render_num(max)),
            );
        }
    }
    if ty != "string" {
        return;
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && value.chars().count() as u64 > max
    {
        return fail(errors, format!("value may only be {max} characters long"));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && (value.chars().count() as u64) < min
    {
        return fail(
            errors,
            format!("value must be at least {min} characters long"),
        );
    }
    match schema.get("format") {
        Some(Value::String(named)) => {
            if let Err(msg) = check_named(named, value) {
                // Inside a property string the key's own text stands alone (`net0.macaddr: value does …`).
                let text = if top_level {
                    format!("invalid format - {msg}")
                } else {
                    msg
                };
                return fail(errors, text);
            }
        }
        Some(Value::Object(inline)) => {
            let format: BTreeMap<String, Value> = inline.clone().into_iter().collect();
            match parse_property_string(value, &format) {
                Err(e) => {
                    return fail(
                        errors,
                        format!("invalid format - {}", e.render_inline(path)),
                    );
                }
                Ok(parsed) => {
                    let mut sub = BTreeMap::new();
                    check_object(path, &format, &parsed, &mut sub);
                    if !sub.is_empty() {
                        return fail(
                            errors,
                            format!(
                                "invalid format - {}",
                                PropError::Fields(sub).render_inline(path)
                            ),
                        );
                    }
                }
            }
        }
        _ => {}
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str)
        && let Some(re) = perl_pattern(p)
        && !re.is_match(value)
    {
        return fail(errors, "value does not match the regex pattern".to_string());
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        let texts: Vec<String> = options
            .iter()
            .map(|o| {
                o.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| o.to_string())
            })
            .collect();
        if !texts.iter().any(|t| t == value) {
            fail(
                errors,
                format!(
                    "value '{value}' does not have a value in the enumeration '{}'",
                    texts.join(", ")
                ),
            );
        }
    }
}

fn render_num(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn both_embedded_schemas_load_and_route() {
        for v in [PveVersion::V8_4, PveVersion::V9_1] {
            let s = Schema::load(v).expect("loads");
            let (ep, p) = s
                .route("GET", "/nodes/pve/qemu/9001/status/current")
                .expect("routes");
            assert_eq!(ep.key, "GET /nodes/{node}/qemu/{vmid}/status/current");
            assert_eq!(p["vmid"], "9001");
            assert!(s.route("GET", "/nodes/pve/nonsense").is_none());
        }
    }

    #[test]
    fn unknown_and_malformed_parameters_get_pve_texts() {
        let s = Schema::load(PveVersion::V9_1).expect("loads");
        let errs = s
            .validate_endpoint(
                "POST /nodes/{node}/qemu",
                &params(&[
                    ("node", "pve"),
                    ("vmid", "99"),
                    ("bogus", "1"),
                    ("net0", "virtio=BD:24:11:CA:FE:01,bridge=vmbr0"),
                ]),
            )
            .expect_err("invalid");
        assert_eq!(errs["vmid"], "value must have a minimum value of 100");
        assert_eq!(errs["bogus"], NOT_IN_SCHEMA);
        assert_eq!(
            errs["net0"],
            "invalid format - format error\nnet0.macaddr: value does not look like a valid unicast MAC address\n"
        );
    }

    #[test]
    fn indexed_parameters_respect_their_range() {
        let s = Schema::load(PveVersion::V9_1).expect("loads");
        let ok = s.validate_endpoint(
            "POST /nodes/{node}/qemu",
            &params(&[
                ("node", "pve"),
                ("vmid", "100"),
                ("ide2", "none,media=cdrom"),
            ]),
        );
        assert!(ok.is_ok(), "{ok:?}");
        let bad = s.validate_endpoint(
            "POST /nodes/{node}/qemu",
            &params(&[
                ("node", "pve"),
                ("vmid", "100"),
                ("ide4", "none,media=cdrom"),
            ]),
        );
        assert_eq!(
            bad.expect_err("ide4 is out of range")["ide4"],
            NOT_IN_SCHEMA
        );
    }

    #[test]
    fn booleans_at_top_level_are_zero_or_one() {
        let s = Schema::load(PveVersion::V9_1).expect("loads");
        let bad = s.validate_endpoint(
            "POST /nodes/{node}/qemu",
            &params(&[("node", "pve"), ("vmid", "100"), ("onboot", "yes")]),
        );
        assert_eq!(
            bad.expect_err("yes is not 0/1")["onboot"],
            "type check ('boolean') failed - got 'yes'"
        );
    }
}
