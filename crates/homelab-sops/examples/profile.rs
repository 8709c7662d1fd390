//! Times (and gives `perf record` something to sample) decrypting and encrypting one YAML file in-process,
//! without the CLI around it: `cargo run --release -p homelab-sops --example profile -- decrypt|encrypt
//! FILE KEYFILE [RUNS]`. Prints the median time per run; never prints plaintext.

use std::time::Instant;

use homelab_sops::{CreationRule, Format, Identities, Style, decrypt, encrypt};

const RECIPIENT: &str = "age1hdh62dma0qs6quhew4amjj4g7vslgg56w8npv4sglxfnszqvcp6s7lc8uy";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(op), Some(file), Some(key)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: profile decrypt|encrypt FILE KEYFILE [RUNS]".into());
    };
    let runs: usize = args.get(4).map_or(Ok(5), |r| r.parse())?;
    let bytes = std::fs::read(file)?;
    let ids = Identities::from_text(&std::fs::read_to_string(key)?)?;
    let rule = CreationRule::for_recipients(&[RECIPIENT]);
    let mut times = Vec::new();
    let mut out_len = 0;
    for _ in 0..runs {
        let start = Instant::now();
        out_len = match op.as_str() {
            "decrypt" => decrypt(&bytes, Format::Yaml, &ids, file)?
                .plaintext(&Style::default())
                .len(),
            "encrypt" => encrypt(&bytes, Format::Yaml, &rule, file)?.len(),
            _ => return Err("the operation is decrypt or encrypt".into()),
        };
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "{op}: median {:?} over {runs} runs ({out_len} bytes out)",
        times[runs / 2]
    );
    Ok(())
}
