//! Locations: `s3://bucket/prefix` or a local path (`/data`, `./data`, `file:///data`).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where objects live: a prefix in an S3 bucket or a local folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// An S3 prefix. `prefix` is empty (the whole bucket) or ends with `/`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix, empty or ending with `/`.
        prefix: String,
    },
    /// A local folder.
    Local {
        /// The folder path as given (relative paths stay relative to the working directory).
        path: PathBuf,
    },
}

impl Location {
    /// Parses a location. A prefix is treated as a folder: `s3://b/data` means `s3://b/data/`.
    ///
    /// ```
    /// use batchfan::uri::Location;
    /// let l = Location::parse("s3://my-bucket/logs/2026").unwrap();
    /// assert_eq!(l.to_string(), "s3://my-bucket/logs/2026/");
    /// assert!(Location::parse("s3:///nobucket").is_err());
    /// ```
    pub fn parse(uri: &str) -> Result<Location> {
        let bad = |reason: &str| Error::InvalidUri { uri: uri.to_string(), reason: reason.to_string() };
        if uri.trim().is_empty() {
            return Err(bad("empty; give s3://bucket/prefix/ or a local folder"));
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            check_bucket(bucket).map_err(|reason| bad(&reason))?;
            if key.contains("//") || key.starts_with('/') {
                return Err(bad("the prefix contains an empty path segment (`//`)"));
            }
            let mut prefix = key.to_string();
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            return Ok(Location::S3 { bucket: bucket.to_string(), prefix });
        }
        if let Some(rest) = uri.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("file:// URIs need an absolute path, e.g. file:///data/in"));
            }
            return Ok(Location::Local { path: PathBuf::from(rest) });
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return Err(bad(&format!("unsupported scheme `{scheme}://`; use s3://bucket/prefix/ or a local path")));
        }
        Ok(Location::Local { path: PathBuf::from(uri) })
    }

    /// The location of `key` below this one, as a URI for messages.
    pub fn join_display(&self, key: &str) -> String {
        match self {
            Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}{key}"),
            Location::Local { path } => path.join(key).display().to_string(),
        }
    }

    /// The location below this one at `key` (a folder-like sub-location).
    pub fn child(&self, key: &str) -> Location {
        let key = key.trim_matches('/');
        match self {
            Location::S3 { bucket, prefix } => {
                Location::S3 { bucket: bucket.clone(), prefix: format!("{prefix}{key}/") }
            }
            Location::Local { path } => Location::Local { path: path.join(key) },
        }
    }

    /// Splits a file-like URI into its parent location and file name:
    /// `s3://b/runs/m.jsonl` gives (`s3://b/runs/`, `m.jsonl`).
    pub fn parse_file(uri: &str) -> Result<(Location, String)> {
        let bad = |reason: &str| Error::InvalidUri { uri: uri.to_string(), reason: reason.to_string() };
        if uri.ends_with('/') {
            return Err(bad("names a folder; give a file name, e.g. s3://bucket/runs/manifest.jsonl"));
        }
        if uri.starts_with("s3://") {
            let (parent, name) = uri.rsplit_once('/').ok_or_else(|| bad("no file name"))?;
            if parent == "s3:/" {
                return Err(bad("no object key after the bucket"));
            }
            return Ok((Location::parse(parent)?, name.to_string()));
        }
        let location = Location::parse(uri)?;
        match location {
            Location::Local { path } => {
                let name = path.file_name().ok_or_else(|| bad("no file name"))?.to_string_lossy().into_owned();
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                Ok((Location::Local { path: parent }, name))
            }
            Location::S3 { .. } => Err(bad("unexpected S3 location")),
        }
    }

    /// For local locations, the same location with an absolute path, so children started
    /// in another working directory find it.
    pub fn absolute(&self) -> Result<Location> {
        match self {
            Location::Local { path } if path.is_relative() => {
                let cwd = std::env::current_dir().map_err(|e| Error::io("reading the working directory", ".", e))?;
                Ok(Location::Local { path: normalize(&cwd.join(path)) })
            }
            other => Ok(other.clone()),
        }
    }

    /// True for S3 locations.
    pub fn is_s3(&self) -> bool {
        matches!(self, Location::S3 { .. })
    }

    /// Where `other` lies below this location, as a key prefix (empty, or ending with `/`):
    /// `s3://b/data/` and `s3://b/data/2026/` give `2026/`; `None` when it is not below.
    pub fn relative(&self, other: &Location) -> Option<String> {
        match (self, other) {
            (Location::S3 { bucket, prefix }, Location::S3 { bucket: b2, prefix: p2 }) if bucket == b2 => {
                p2.strip_prefix(prefix.as_str()).map(str::to_string)
            }
            (Location::Local { path }, Location::Local { path: p2 }) => {
                let rest = p2.strip_prefix(path).ok()?;
                let parts: Vec<String> =
                    rest.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                Some(parts.iter().map(|p| format!("{p}/")).collect())
            }
            _ => None,
        }
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Checks an S3 bucket name against AWS's rules (3-63 characters; lowercase letters, digits,
/// dots, hyphens; starting and ending with a letter or digit).
fn check_bucket(bucket: &str) -> std::result::Result<(), String> {
    if bucket.is_empty() {
        return Err("no bucket name; write s3://bucket/prefix/".into());
    }
    let ok_chars = bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&bucket.len())
        || !ok_chars
        || !ends_ok(bucket.bytes().next())
        || !ends_ok(bucket.bytes().last())
        || bucket.contains("..")
    {
        return Err(format!(
            "`{bucket}` is not a valid bucket name (3-63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Local { path } => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_and_local() {
        assert_eq!(
            Location::parse("s3://bkt/a/b").unwrap(),
            Location::S3 { bucket: "bkt".into(), prefix: "a/b/".into() }
        );
        assert_eq!(Location::parse("s3://bkt").unwrap(), Location::S3 { bucket: "bkt".into(), prefix: "".into() });
        assert_eq!(Location::parse("s3://bkt/").unwrap(), Location::S3 { bucket: "bkt".into(), prefix: "".into() });
        assert_eq!(Location::parse("file:///x/y").unwrap(), Location::Local { path: "/x/y".into() });
        assert_eq!(Location::parse("data/in").unwrap(), Location::Local { path: "data/in".into() });
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "s3://", "s3:///x", "s3://B/x", "s3://ab/x", "s3://bkt//x", "gs://b/x", "file://rel"] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_locations() {
        let root = Location::parse("s3://bkt/data/").unwrap();
        assert_eq!(root.relative(&Location::parse("s3://bkt/data/a/b").unwrap()).as_deref(), Some("a/b/"));
        assert_eq!(root.relative(&root).as_deref(), Some(""));
        assert_eq!(root.relative(&Location::parse("s3://bkt/dat/").unwrap()), None);
        assert_eq!(root.relative(&Location::parse("s3://other/data/").unwrap()), None);
        let local = Location::parse("/srv/in").unwrap();
        assert_eq!(local.relative(&Location::parse("/srv/in/x/y").unwrap()).as_deref(), Some("x/y/"));
        assert_eq!(local.relative(&Location::parse("/srv/input").unwrap()), None);
    }

    #[test]
    fn splits_files() {
        let (loc, name) = Location::parse_file("s3://bkt/runs/m.jsonl").unwrap();
        assert_eq!(loc.to_string(), "s3://bkt/runs/");
        assert_eq!(name, "m.jsonl");
        let (loc, name) = Location::parse_file("m.jsonl").unwrap();
        assert_eq!(loc, Location::Local { path: ".".into() });
        assert_eq!(name, "m.jsonl");
        assert!(Location::parse_file("s3://bkt/").is_err());
        assert!(Location::parse_file("s3://bkt").is_err());
    }
}
