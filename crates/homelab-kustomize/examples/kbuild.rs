//! `cargo run -p homelab-kustomize --example kbuild DIR`: prints the build of DIR (for manual diffing).
fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    match homelab_kustomize::build_dir(std::path::Path::new(&dir), &Default::default())
        .and_then(|o| o.to_yaml())
    {
        Ok(s) => print!("{s}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
