//! Checks of the places a command will write, made before anything is written: a location that
//! cannot take the write is bad input (exit 2) named by its option, never a failure halfway.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::registry::StoreRegistry;
use crate::uri::Location;

/// Checks that `path` is, or can be made, a folder this process can write: its nearest
/// existing ancestor is a folder (not a regular file) and writable. `field` names the option
/// in the error.
pub fn local_folder(field: &str, path: &Path) -> Result<()> {
    let mut existing = path.to_path_buf();
    loop {
        match std::fs::metadata(&existing) {
            Ok(md) if md.is_dir() => break,
            Ok(_) if existing == path => {
                return Err(Error::option(field, path.display(), "a folder: it is a regular file"));
            }
            Ok(_) => {
                return Err(Error::option(
                    field,
                    path.display(),
                    format!("a folder that can be made: `{}` above it is a regular file", existing.display()),
                ));
            }
            Err(_) => match existing.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => existing = parent.to_path_buf(),
                _ => {
                    existing = PathBuf::from(".");
                    break;
                }
            },
        }
    }
    if !writable(&existing) {
        let which = if existing == path { "it".to_string() } else { format!("`{}` above it", existing.display()) };
        return Err(Error::option(
            field,
            path.display(),
            format!(
                "a folder this user can write: {which} is not writable (permissions or a read-only file system); choose another folder"
            ),
        ));
    }
    Ok(())
}

/// True when this process may create entries in the folder `dir`.
pub fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: access(2) only reads the NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Checks the manifest's location: a new name (a manifest is never overwritten in place: the
/// children of its run read it), in a bucket that exists or a folder this user can write.
pub async fn manifest(stores: &StoreRegistry, uri: &str) -> Result<()> {
    let (dir, name) = Location::parse_file(uri)?;
    let exists = |what: &str| {
        Error::option(
            "--manifest",
            uri,
            format!(
                "a new location: {what} already exists there, and a manifest is never overwritten in place (the children of its run read it); choose another --manifest, or delete it if no run uses it"
            ),
        )
    };
    match &dir {
        Location::S3 { .. } => {
            let store = stores.store(&dir)?;
            store.check_root().await?;
            if store.head(&name).await?.is_some() {
                return Err(exists("an object"));
            }
        }
        Location::Local { path } => {
            let file = path.join(&name);
            match std::fs::metadata(&file) {
                Ok(md) if md.is_dir() => return Err(exists("a folder")),
                Ok(_) => return Err(exists("a manifest")),
                Err(_) => {}
            }
            local_folder("--manifest", path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_under_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("afile");
        std::fs::write(&file, b"x").unwrap();
        assert!(local_folder("--log-dir", dir.path()).is_ok());
        assert!(local_folder("--log-dir", &dir.path().join("new/deeper")).is_ok());
        let err = local_folder("--log-dir", &file).unwrap_err();
        assert!(err.is_bad_input() && err.to_string().contains("regular file"), "{err}");
        let err = local_folder("--log-dir", &file.join("sub")).unwrap_err();
        assert!(err.to_string().contains("afile"), "{err}");
    }
}
