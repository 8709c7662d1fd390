//! Unpacks the Kubeconfig RPC payload: a gzip'ed tar holding one file named `kubeconfig`.

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

    #[test]
    fn missing_entry_and_garbage_are_errors() {
        assert!(kubeconfig_from_tar_gz(&tar_gz("other", b"x")).is_err());
        assert!(kubeconfig_from_tar_gz(b"definitely not gzip").is_err());
    }
}
