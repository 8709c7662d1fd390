//! Unpacks the Kubeconfig RPC payload: a gzip'ed tar holding one file named `kubeconfig`. Talos
//! (`v1alpha1_server.go`) closes the gzip writer but never the tar writer, so the archive ends
//! right after the file's bytes: no padding to the 512-byte block, no end-of-archive blocks. The
//! entry is read by its size and the rest of the archive is never looked at.

use std::io::Read;

use zeroize::Zeroizing;

/// Largest kubeconfig accepted (the real one is a few KiB).
const MAX_KUBECONFIG: u64 = 1 << 20;

/// Returns the bytes of the `kubeconfig` entry of a tar.gz archive.
pub(crate) fn kubeconfig_from_tar_gz(archive: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let gz = flate2::read::GzDecoder::new(archive);
    let mut tar = tar::Archive::new(gz);
    let entries = tar
        .entries()
        .map_err(|e| format!("not a tar.gz archive: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("corrupt tar.gz archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        if path.file_name().is_some_and(|n| n == "kubeconfig") {
            let size = entry.size();
            let mut out = Zeroizing::new(Vec::new());
            entry
                .take(MAX_KUBECONFIG + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("cannot read the kubeconfig entry: {e}"))?;
            if out.len() as u64 > MAX_KUBECONFIG {
                return Err(format!(
                    "kubeconfig entry is larger than {MAX_KUBECONFIG} bytes"
                ));
            }
            // The entry is read by its size (Talos sends no end marker): fewer bytes than the
            // header announces is a cut-off stream, not a short kubeconfig.
            if (out.len() as u64) < size {
                return Err(format!(
                    "kubeconfig entry is cut off: {} of {size} bytes",
                    out.len()
                ));
            }
            return Ok(out);
        }
    }
    Err("archive has no `kubeconfig` entry".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(name: &str, body: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        let appended = builder.append_data(&mut header, name, body);
        assert!(appended.is_ok());
        match builder.into_inner().and_then(|gz| gz.finish()) {
            Ok(bytes) => bytes,
            Err(e) => panic!("building the test archive: {e}"),
        }
    }

    #[test]
    fn extracts_the_kubeconfig_entry() {
        let got = kubeconfig_from_tar_gz(&tar_gz("kubeconfig", b"apiVersion: v1\n"));
        assert_eq!(got.map(|b| b.to_vec()), Ok(b"apiVersion: v1\n".to_vec()));
    }

    /// The archive as Talos writes it: a USTAR header and the bytes, gzip'ed, tar never closed.
    fn talos_tar_gz(body: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut header = tar::Header::new_ustar();
        assert!(header.set_path("kubeconfig").is_ok());
        header.set_size(body.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(1_765_000_000);
        header.set_cksum();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        assert!(gz.write_all(header.as_bytes()).is_ok());
        assert!(gz.write_all(body).is_ok());
        match gz.finish() {
            Ok(bytes) => bytes,
            Err(e) => panic!("gzip: {e}"),
        }
    }

    #[test]
    fn extracts_the_kubeconfig_from_an_archive_without_end_marker_as_talos_sends_it() {
        let body = b"apiVersion: v1\nkind: Config\n";
        let archive = talos_tar_gz(body);
        let mut raw = Vec::new();
        let read = flate2::read::GzDecoder::new(&archive[..]).read_to_end(&mut raw);
        assert!(read.is_ok());
        assert_eq!(raw.len(), 512 + body.len(), "no padding, no end blocks");
        let got = kubeconfig_from_tar_gz(&archive);
        assert_eq!(got.map(|b| b.to_vec()), Ok(body.to_vec()));
    }

    #[test]
    fn a_truncated_entry_is_an_error_not_a_short_kubeconfig() {
        let archive = talos_tar_gz(b"apiVersion: v1\nkind: Config\n");
        let mut raw = Vec::new();
        assert!(
            flate2::read::GzDecoder::new(&archive[..])
                .read_to_end(&mut raw)
                .is_ok()
        );
        raw.truncate(raw.len() - 5);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        assert!(std::io::Write::write_all(&mut gz, &raw).is_ok());
        let cut = gz.finish().unwrap_or_default();
        assert!(kubeconfig_from_tar_gz(&cut).is_err());
    }

    #[test]
    fn missing_entry_and_garbage_are_errors() {
        assert!(kubeconfig_from_tar_gz(&tar_gz("other", b"x")).is_err());
        assert!(kubeconfig_from_tar_gz(b"definitely not gzip").is_err());
    }
}
