//! S3 Inventory as input (`--input-inventory`): the objects to plan read from an inventory
//! report instead of listing the input.
//!
//! An inventory configuration writes, under its destination, `SOURCE/CONFIG/TIMESTAMP/`
//! `manifest.json` with `manifest.checksum` (the hex MD5 of `manifest.json`) beside it, and the
//! data files under `SOURCE/CONFIG/data/`. `--input-inventory` names a `manifest.json` or the
//! configuration's folder (`s3://dest/SOURCE/CONFIG/`), where the newest complete timestamp
//! folder (one holding both files) is taken. Both the manifest's checksum and each data file's
//! size and MD5 are checked. Columns are found by name in the manifest's `fileSchema` (CSV) or
//! the file's own schema (Parquet), in any order. CSV files (gzip; keys URL-encoded, as AWS
//! writes them) are read as they stream; Parquet files (cargo feature `inventory-parquet`) one
//! at a time into memory, their rows streamed out. Rows that are not the latest version, delete
//! markers and keys outside `--input` are skipped and counted. Items are pinned by the
//! inventory's ETag and size, so a worker reading an object overwritten since the inventory was
//! taken stops on the changed-input check (exit 3) instead of processing another version.
//!
//! The `Size` and `ETag` fields are required: an inventory without them is refused (exit 2),
//! since items could be neither packed nor pinned.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use futures_util::TryStreamExt;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tokio_util::io::StreamReader;

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::registry::StoreRegistry;
use crate::store::{ObjectMeta, PageRequest, Store, read_all};
use crate::uri::Location;

/// The option every inventory error names.
const FIELD: &str = "--input-inventory";

/// What an inventory gave a plan: which manifest, how many rows, and the rows skipped, by why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InventoryStats {
    /// The `manifest.json` read.
    pub manifest: String,
    /// `CSV` or `Parquet`.
    pub format: String,
    /// The manifest's `creationTimestamp` (ms since the epoch), when it has one.
    pub created_ms: Option<u64>,
    /// Data files read.
    pub files: usize,
    /// Rows read.
    pub rows: u64,
    /// Rows skipped: not the latest version of their key.
    pub skipped_not_latest: u64,
    /// Rows skipped: delete markers.
    pub skipped_delete_markers: u64,
    /// Rows skipped: keys outside `--input`'s prefix.
    pub skipped_outside_prefix: u64,
}

/// The objects an inventory holds under the input.
#[derive(Debug, Clone, Default)]
pub struct InventoryObjects {
    /// Objects kept by the filter, keys relative to the input (compact: ten million fit).
    pub objects: crate::items::Items,
    /// Objects under the input before filtering (latest versions, no delete markers).
    pub listed: usize,
    /// What was read and skipped.
    pub stats: InventoryStats,
}

/// `manifest.json` as AWS writes it (the fields used).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    source_bucket: String,
    destination_bucket: String,
    #[serde(default)]
    creation_timestamp: Option<String>,
    file_format: String,
    #[serde(default)]
    file_schema: String,
    files: Vec<DataFile>,
}

#[derive(Debug, Deserialize)]
struct DataFile {
    key: String,
    size: u64,
    #[serde(rename = "MD5checksum", default)]
    md5: Option<String>,
}

/// The data file formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Parquet,
}

/// Where the columns used are in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Columns {
    key: usize,
    size: usize,
    etag: usize,
    last_modified: Option<usize>,
    is_latest: Option<usize>,
    is_delete_marker: Option<usize>,
}

impl Columns {
    /// Finds the columns by name (`Key` and `key`, `ETag` and `e_tag` alike), in any order.
    fn from_names<S: AsRef<str>>(names: &[S], manifest: &str) -> Result<Columns> {
        let norm = |s: &str| s.trim().chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
        let names: Vec<String> = names.iter().map(|n| norm(n.as_ref())).collect();
        let find = |name: &str| names.iter().position(|n| n == name);
        let need = |name: &str, field: &str| {
            find(name).ok_or_else(|| {
                Error::option(
                    FIELD,
                    manifest,
                    format!(
                        "an inventory whose fileSchema holds `{field}`: it has none (add the {field} field to the inventory configuration; batchfan packs by size and pins items by ETag)"
                    ),
                )
            })
        };
        Ok(Columns {
            key: need("key", "Key")?,
            size: need("size", "Size")?,
            etag: need("etag", "ETag")?,
            last_modified: find("lastmodifieddate"),
            is_latest: find("islatest"),
            is_delete_marker: find("isdeletemarker"),
        })
    }
}

/// One row's values, as read.
#[derive(Debug, Default, PartialEq, Eq)]
struct Row {
    key: String,
    size: Option<u64>,
    etag: Option<String>,
    last_modified_ms: Option<u64>,
    is_latest: Option<bool>,
    is_delete_marker: Option<bool>,
}

/// Rows to objects: skipping, counting and filtering as they come.
struct Collector<'a> {
    prefix: String,
    keep: &'a (dyn Fn(&str) -> bool + Sync),
    out: InventoryObjects,
}

impl Collector<'_> {
    fn take(&mut self, row: Row, file: &str, line: u64) -> Result<()> {
        let stats = &mut self.out.stats;
        stats.rows += 1;
        if row.is_delete_marker == Some(true) {
            stats.skipped_delete_markers += 1;
            return Ok(());
        }
        if row.is_latest == Some(false) {
            stats.skipped_not_latest += 1;
            return Ok(());
        }
        let Some(key) = row.key.strip_prefix(self.prefix.as_str()) else {
            stats.skipped_outside_prefix += 1;
            return Ok(());
        };
        // Folder markers are not objects (listings leave them out too).
        if key.is_empty() || key.ends_with('/') {
            return Ok(());
        }
        let bad = |what: &str| Error::option(FIELD, file, format!("row {line} (key `{}`): {what}", row.key));
        let size = row.size.ok_or_else(|| bad("has no Size; an inventory with the Size field of every object"))?;
        let etag = row.etag.as_deref().filter(|e| !e.is_empty()).ok_or_else(|| {
            bad("has no ETag; an inventory with the ETag field of every object (items are pinned by it)")
        })?;
        self.out.listed += 1;
        if !(self.keep)(key) {
            return Ok(());
        }
        let etag = if etag.starts_with('"') { etag.to_string() } else { format!("\"{etag}\"") };
        let meta = ObjectMeta {
            key: key.to_string(),
            size,
            etag: Some(etag),
            mtime_ns: row.last_modified_ms.map(|ms| ms.saturating_mul(1_000_000)),
            content_encoding: None,
        };
        self.out.objects.push(&meta, None);
        Ok(())
    }
}

/// Reads the inventory `uri` names for the S3 `input`: its manifest (checked against its
/// checksum), then every data file (checked against the manifest's size and MD5), keeping the
/// latest versions of the objects under `input` that `keep` (the `--include`/`--exclude`
/// filters, given keys relative to `input`) keeps.
pub async fn read(
    stores: &StoreRegistry,
    uri: &str,
    input: &Location,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<InventoryObjects> {
    let Location::S3 { bucket, prefix } = input else {
        return Err(Error::option(
            FIELD,
            uri,
            format!(
                "an inventory of an S3 --input: --input `{input}` is a local folder (list it, or give its s3:// location)"
            ),
        ));
    };
    let (dir, name) = locate(stores, uri).await?;
    let manifest_uri = dir.join_display(&name);
    let store = stores.store(&dir)?;
    let manifest = read_manifest(store.as_ref(), &name, &manifest_uri).await?;
    let format = match manifest.file_format.to_ascii_lowercase().as_str() {
        "csv" => Format::Csv,
        "parquet" => Format::Parquet,
        "orc" => {
            return Err(Error::option(
                FIELD,
                &manifest_uri,
                "an inventory in CSV or Parquet format: this one is ORC, which batchfan does not read (set the inventory configuration's format to CSV or Parquet)",
            ));
        }
        other => {
            return Err(Error::option(
                FIELD,
                &manifest_uri,
                format!("an inventory in CSV or Parquet format: its fileFormat is `{other}`"),
            ));
        }
    };
    if format == Format::Parquet && !cfg!(feature = "inventory-parquet") {
        return Err(Error::option(
            FIELD,
            &manifest_uri,
            "a CSV inventory: this batchfan was built without Parquet inventories (cargo feature `inventory-parquet` of batchfan, on by default in the batchfan CLI)",
        ));
    }
    if manifest.source_bucket != *bucket {
        return Err(Error::option(
            FIELD,
            &manifest_uri,
            format!(
                "an inventory of bucket `{bucket}` (the bucket of --input `{input}`): this one lists bucket `{}`",
                manifest.source_bucket
            ),
        ));
    }
    let columns = match format {
        Format::Csv => Some(Columns::from_names(&manifest.file_schema.split(',').collect::<Vec<_>>(), &manifest_uri)?),
        Format::Parquet => None,
    };
    let data_root = data_root(&dir, &manifest, &manifest_uri)?;
    let data_store = stores.store(&data_root)?;
    let mut collector = Collector {
        prefix: prefix.clone(),
        keep,
        out: InventoryObjects {
            stats: InventoryStats {
                manifest: manifest_uri.clone(),
                format: match format {
                    Format::Csv => "CSV".into(),
                    Format::Parquet => "Parquet".into(),
                },
                created_ms: manifest.creation_timestamp.as_deref().and_then(|t| t.trim().parse().ok()),
                ..InventoryStats::default()
            },
            ..InventoryObjects::default()
        },
    };
    for file in &manifest.files {
        let key = data_key(&dir, &file.key);
        let file_uri = data_root.join_display(&key);
        match (format, &columns) {
            (Format::Csv, Some(columns)) => {
                read_csv(data_store.as_ref(), &key, file, &file_uri, columns, &mut collector).await?
            }
            _ => read_parquet(data_store.as_ref(), &key, file, &file_uri, &manifest_uri, &mut collector).await?,
        }
        collector.out.stats.files += 1;
    }
    Ok(collector.out)
}

/// The manifest's folder and file name: the `manifest.json` named, or the newest complete
/// timestamp folder of the configuration folder named.
async fn locate(stores: &StoreRegistry, uri: &str) -> Result<(Location, String)> {
    if uri.trim_end_matches('/').ends_with(".json") {
        let (dir, name) = Location::parse_file(uri).map_err(|e| Error::option(FIELD, uri, e.to_string()))?;
        return Ok((dir.absolute()?, name));
    }
    let folder = Location::parse(uri).map_err(|e| Error::option(FIELD, uri, e.to_string()))?.absolute()?;
    let store = stores.store(&folder)?;
    // A delivery folder itself (CONFIG/TIMESTAMP/), complete.
    if store.head("manifest.json").await?.is_some() && store.head("manifest.checksum").await?.is_some() {
        return Ok((folder, "manifest.json".to_string()));
    }
    let none_complete = || {
        Error::option(
            FIELD,
            uri,
            "a manifest.json, or an inventory configuration's folder holding TIMESTAMP/manifest.json with its manifest.checksum (s3://DEST/SOURCE-BUCKET/CONFIG-ID/): none complete found there",
        )
    };
    // S3: the delivery folders alone (the delimiter's common prefixes, not the data files under
    // `data/`), newest first, each asked for its two files.
    if let Some(mut stamps) = delivery_folders(store.as_ref()).await? {
        stamps.retain(|s| looks_like_timestamp(s));
        stamps.sort_unstable_by(|a, b| b.cmp(a));
        for stamp in stamps {
            if store.head(&format!("{stamp}/manifest.json")).await?.is_some()
                && store.head(&format!("{stamp}/manifest.checksum")).await?.is_some()
            {
                return Ok((folder.child(&stamp), "manifest.json".to_string()));
            }
        }
        return Err(none_complete());
    }
    let mut found: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut listing = store.list("");
    loop {
        let object = match listing.try_next().await {
            Ok(Some(object)) => object,
            Ok(None) => break,
            Err(Error::NotFound { .. } | Error::NoSuchBucket { .. }) => break,
            Err(e) => return Err(e),
        };
        let Some((stamp, file)) = object.key.split_once('/') else { continue };
        if !looks_like_timestamp(stamp) {
            continue;
        }
        let entry = found.entry(stamp.to_string()).or_default();
        match file {
            "manifest.json" => entry.0 = true,
            "manifest.checksum" => entry.1 = true,
            _ => {}
        }
    }
    let Some((stamp, _)) = found.iter().rev().find(|(_, (json, sum))| *json && *sum) else {
        return Err(none_complete());
    };
    Ok((folder.child(stamp), "manifest.json".to_string()))
}

/// The folders right under a store's root, by paged listings with a delimiter; `None` when the
/// store has no paged listing (local folders), and none when the root does not exist.
async fn delivery_folders(store: &dyn Store) -> Result<Option<Vec<String>>> {
    let mut folders = Vec::new();
    let mut token = None;
    loop {
        let request = PageRequest::new("").delimiter('/').token(token.take());
        match store.list_page(&request).await {
            Ok(Some(page)) => {
                folders.extend(page.common_prefixes.iter().map(|p| p.trim_end_matches('/').to_string()));
                match page.next {
                    Some(next) => token = Some(next),
                    None => return Ok(Some(folders)),
                }
            }
            Ok(None) => return Ok(None),
            Err(Error::NotFound { .. } | Error::NoSuchBucket { .. }) => return Ok(Some(folders)),
            Err(e) => return Err(e),
        }
    }
}

/// `2026-11-30T00-00Z`: the folder names AWS gives each delivery.
fn looks_like_timestamp(name: &str) -> bool {
    name.len() >= 10 && name.as_bytes()[..4].iter().all(u8::is_ascii_digit) && name.as_bytes()[4] == b'-'
}

/// Reads `manifest.json` and checks it against `manifest.checksum` beside it.
async fn read_manifest(store: &dyn Store, name: &str, uri: &str) -> Result<Manifest> {
    let missing = |what: &'static str| {
        move |e: Error| match e {
            Error::NotFound { .. } | Error::NoSuchBucket { .. } => {
                Error::option(FIELD, uri, format!("an inventory manifest with {what}: there is none"))
            }
            other => other,
        }
    };
    let bytes = read_all(store, name, None, None).await.map_err(missing("manifest.json"))?;
    let checksum_name = match name.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/manifest.checksum"),
        None => "manifest.checksum".to_string(),
    };
    let checksum =
        read_all(store, &checksum_name, None, None).await.map_err(missing("its manifest.checksum beside it"))?;
    let expected = String::from_utf8_lossy(&checksum).trim().to_ascii_lowercase();
    let actual = md5_hex(&bytes);
    if expected != actual {
        return Err(Error::option(
            FIELD,
            uri,
            format!(
                "a manifest.json whose MD5 matches its manifest.checksum: the checksum says {expected}, the manifest's MD5 is {actual} (an incomplete or altered delivery; take another)"
            ),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::option(
            FIELD,
            uri,
            format!("an S3 Inventory manifest.json (sourceBucket, fileFormat, fileSchema, files): {e}"),
        )
    })
}

/// The hex MD5 of `bytes`.
fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the data files' keys are relative to: the destination bucket the manifest names (an
/// S3 manifest), or, for a local copy, the folder standing for that bucket (the manifest sits
/// at `SOURCE/CONFIG/TIMESTAMP/manifest.json` below it, as in the bucket).
fn data_root(dir: &Location, manifest: &Manifest, uri: &str) -> Result<Location> {
    match dir {
        Location::S3 { .. } => {
            let bucket =
                manifest.destination_bucket.strip_prefix("arn:aws:s3:::").unwrap_or(&manifest.destination_bucket);
            Location::parse(&format!("s3://{bucket}/")).map_err(|e| {
                Error::option(FIELD, uri, format!("a manifest whose destinationBucket is a bucket ARN: {e}"))
            })
        }
        Location::Local { path } => Ok(Location::Local { path: path.parent().unwrap_or(path).to_path_buf() }),
    }
}

/// A data file's key in [`data_root`]'s store: as the manifest writes it for S3; for a local
/// copy, below the configuration folder: from its last `data/` on (AWS writes
/// `[PREFIX/]SOURCE/CONFIG/data/FILE`, the destination's prefix optional).
fn data_key(dir: &Location, key: &str) -> String {
    match dir {
        Location::S3 { .. } => key.to_string(),
        Location::Local { .. } => match key.rsplit_once("/data/") {
            Some((_, file)) => format!("data/{file}"),
            None => key.to_string(),
        },
    }
}

/// Checks a data file read whole or streamed against the manifest's size and MD5.
fn check_file(file: &DataFile, uri: &str, size: u64, md5: &str) -> Result<()> {
    if size != file.size {
        return Err(Error::option(
            FIELD,
            uri,
            format!(
                "a data file of {} bytes as the manifest says: it has {size} (changed since the delivery)",
                file.size
            ),
        ));
    }
    if let Some(expected) = file.md5.as_deref().map(str::to_ascii_lowercase).filter(|m| !m.is_empty())
        && expected != md5
    {
        return Err(Error::option(
            FIELD,
            uri,
            format!("a data file whose MD5 is the manifest's {expected}: it is {md5} (changed since the delivery)"),
        ));
    }
    Ok(())
}

fn missing_file(uri: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::NotFound { .. } | Error::NoSuchBucket { .. } => {
            Error::option(FIELD, uri, "a data file the manifest lists: there is none (an expired or partial delivery)")
        }
        other => other,
    }
}

/// Reads one CSV data file as it streams (gunzipped when its key says `.gz`).
async fn read_csv(
    store: &dyn Store,
    key: &str,
    file: &DataFile,
    uri: &str,
    columns: &Columns,
    collector: &mut Collector<'_>,
) -> Result<()> {
    let raw = store.get(key, None, None).await.map_err(missing_file(uri))?;
    let seen = Arc::new(Mutex::new((Md5::new(), 0u64)));
    let tap = seen.clone();
    let raw: crate::store::ByteStream = Box::pin(raw.inspect_ok(move |block| {
        if let Ok(mut seen) = tap.lock() {
            seen.0.update(block);
            seen.1 += block.len() as u64;
        }
    }));
    let decoded = match Codec::from_key(key) {
        Some(codec) => codec.decode(raw, uri.to_string()),
        None => raw,
    };
    let reader = StreamReader::new(decoded.map_err(io::Error::other));
    let mut csv = csv_async::AsyncReaderBuilder::new().has_headers(false).flexible(true).create_reader(reader);
    let mut record = csv_async::ByteRecord::new();
    let mut line = 0u64;
    loop {
        match csv.read_byte_record(&mut record).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(e, uri, line + 1)),
        }
        line += 1;
        let row = csv_row(&record, columns).map_err(|what| Error::option(FIELD, uri, format!("row {line}: {what}")))?;
        collector.take(row, uri, line)?;
    }
    drop(csv);
    let (md5, size) = {
        let seen = seen.lock().map_err(|_| Error::option(FIELD, uri, "a readable data file"))?;
        (hex(&seen.0.clone().finalize()), seen.1)
    };
    check_file(file, uri, size, &md5)
}

/// A CSV reading error: the store's or the decoder's as they were, else a malformed file.
fn csv_error(e: csv_async::Error, uri: &str, line: u64) -> Error {
    match e.into_kind() {
        csv_async::ErrorKind::Io(io) => match io.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(inner)) => *inner,
            Some(Err(other)) => Error::option(FIELD, uri, format!("a readable CSV data file: row {line}: {other}")),
            None => Error::option(FIELD, uri, format!("a readable CSV data file: row {line}")),
        },
        other => Error::option(FIELD, uri, format!("a CSV data file as S3 Inventory writes it: row {line}: {other:?}")),
    }
}

/// One CSV record's values: the key URL-decoded, the rest as written.
fn csv_row(record: &csv_async::ByteRecord, columns: &Columns) -> std::result::Result<Row, String> {
    let text = |i: usize| -> std::result::Result<&str, String> {
        // A short row is malformed, not a row of empty fields (an empty key would pass for a
        // folder marker).
        let field =
            record.get(i).ok_or_else(|| format!("has {} columns; the schema has column {}", record.len(), i + 1))?;
        std::str::from_utf8(field).map_err(|_| format!("column {} is not UTF-8", i + 1))
    };
    let opt = |i: Option<usize>| -> std::result::Result<Option<&str>, String> {
        match i {
            Some(i) => text(i).map(|t| Some(t.trim()).filter(|t| !t.is_empty())),
            None => Ok(None),
        }
    };
    let raw_key = text(columns.key)?;
    let key = decode_key(raw_key).ok_or_else(|| format!("key `{raw_key}` is not URL-encoded UTF-8"))?;
    let size = match opt(Some(columns.size))? {
        Some(s) => Some(s.parse::<u64>().map_err(|_| format!("Size `{s}` is not a number"))?),
        None => None,
    };
    let last_modified_ms = match opt(columns.last_modified)? {
        Some(t) => Some(crate::time::parse_time(t).ok_or_else(|| format!("LastModifiedDate `{t}` is not a time"))?),
        None => None,
    };
    let flag = |i: Option<usize>, name: &str| -> std::result::Result<Option<bool>, String> {
        match opt(i)? {
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(format!("{name} `{v}` is neither true nor false")),
            None => Ok(None),
        }
    };
    Ok(Row {
        key,
        size,
        etag: opt(Some(columns.etag))?.map(str::to_string),
        last_modified_ms,
        is_latest: flag(columns.is_latest, "IsLatest")?,
        is_delete_marker: flag(columns.is_delete_marker, "IsDeleteMarker")?,
    })
}

/// Decodes a key as S3 Inventory writes it in CSV: form encoding (`+` a space, `%XX` a byte),
/// the bytes UTF-8. `None` when it is not.
pub fn decode_key(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (*bytes.get(i + 1)? as char).to_digit(16)?;
                let lo = (*bytes.get(i + 2)? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Reads one Parquet data file: streamed into a temporary file (its size and MD5 checked
/// against the manifest as it comes), then its rows, a row group at a time: a data file is never
/// held in memory whole (AWS writes them up to hundreds of MB).
#[cfg(feature = "inventory-parquet")]
async fn read_parquet(
    store: &dyn Store,
    key: &str,
    file: &DataFile,
    uri: &str,
    manifest_uri: &str,
    collector: &mut Collector<'_>,
) -> Result<()> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    use tokio::io::AsyncWriteExt;

    let path = std::env::temp_dir().join(format!(
        "batchfan-inventory-{}-{:016x}.parquet",
        std::process::id(),
        fastrand::u64(..)
    ));
    let _cleanup = crate::store::TempFiles(vec![path.clone()]);
    let mut staged = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .await
        .map_err(|e| Error::io("creating", &path, e))?;
    let mut body = store.get(key, None, None).await.map_err(missing_file(uri))?;
    let (mut size, mut md5) = (0u64, Md5::new());
    while let Some(bytes) = body.try_next().await? {
        size += bytes.len() as u64;
        md5.update(&bytes);
        staged.write_all(&bytes).await.map_err(|e| Error::io("writing", &path, e))?;
    }
    staged.flush().await.map_err(|e| Error::io("writing", &path, e))?;
    drop(staged);
    check_file(file, uri, size, &hex(&md5.finalize()))?;
    let bad = |e: parquet::errors::ParquetError| {
        Error::option(FIELD, uri, format!("a Parquet data file as S3 Inventory writes it: {e}"))
    };
    let staged = std::fs::File::open(&path).map_err(|e| Error::io("reading", &path, e))?;
    let reader = SerializedFileReader::new(staged).map_err(bad)?;
    let names: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let columns = Columns::from_names(&names, manifest_uri)?;
    let text = |f: &Field| match f {
        Field::Str(s) => Some(s.clone()),
        Field::Bytes(b) => std::str::from_utf8(b.data()).ok().map(str::to_string),
        _ => None,
    };
    let number = |f: &Field| match f {
        Field::Long(n) => u64::try_from(*n).ok(),
        Field::Int(n) => u64::try_from(*n).ok(),
        Field::ULong(n) => Some(*n),
        Field::UInt(n) => Some(u64::from(*n)),
        Field::TimestampMillis(n) => u64::try_from(*n).ok(),
        Field::TimestampMicros(n) => u64::try_from(*n / 1000).ok(),
        Field::Str(s) => s.trim().parse().ok().or_else(|| crate::time::parse_time(s)),
        _ => None,
    };
    let flag = |f: &Field| match f {
        Field::Bool(b) => Some(*b),
        Field::Str(s) => s.parse().ok(),
        _ => None,
    };
    let mut line = 0u64;
    for row in reader.get_row_iter(None).map_err(bad)? {
        let row = row.map_err(bad)?;
        line += 1;
        let mut values = Row::default();
        for (i, (_, field)) in row.get_column_iter().enumerate() {
            match i {
                i if i == columns.key => {
                    values.key = text(field)
                        .ok_or_else(|| Error::option(FIELD, uri, format!("row {line}: its key is null or not text")))?;
                }
                i if i == columns.size => values.size = number(field),
                i if i == columns.etag => values.etag = text(field),
                i if Some(i) == columns.last_modified => values.last_modified_ms = number(field),
                i if Some(i) == columns.is_latest => values.is_latest = flag(field),
                i if Some(i) == columns.is_delete_marker => values.is_delete_marker = flag(field),
                _ => {}
            }
        }
        collector.take(values, uri, line)?;
    }
    Ok(())
}

#[cfg(not(feature = "inventory-parquet"))]
async fn read_parquet(
    _store: &dyn Store,
    _key: &str,
    _file: &DataFile,
    _uri: &str,
    manifest_uri: &str,
    _collector: &mut Collector<'_>,
) -> Result<()> {
    Err(Error::option(FIELD, manifest_uri, "a CSV inventory: this batchfan reads no Parquet"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use bytes::Bytes;

    const SCHEMA: &str = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass";

    async fn gzip(text: &str) -> Bytes {
        use tokio::io::AsyncWriteExt;
        let mut enc = async_compression::tokio::write::GzipEncoder::new(Vec::new());
        enc.write_all(text.as_bytes()).await.unwrap();
        enc.shutdown().await.unwrap();
        Bytes::from(enc.into_inner())
    }

    struct Setup {
        stores: StoreRegistry,
        dest: Arc<MemoryStore>,
    }

    fn setup() -> Setup {
        let dest = Arc::new(MemoryStore::new(Location::parse("s3://dest/").unwrap()));
        let src = Arc::new(MemoryStore::new(Location::parse("s3://src/").unwrap()));
        let stores = StoreRegistry::for_tests_with(vec![
            (Location::parse("s3://dest/").unwrap(), dest.clone() as Arc<dyn Store>),
            (Location::parse("s3://src/").unwrap(), src as Arc<dyn Store>),
        ]);
        Setup { stores, dest }
    }

    /// Writes a CSV inventory delivery at `stamp` holding `rows`; returns the manifest's URI.
    async fn deliver(s: &Setup, stamp: &str, format: &str, schema: &str, rows: &str) -> String {
        let data_key = format!("src/cfg/data/{stamp}.csv.gz");
        let data = gzip(rows).await;
        s.dest.put(&data_key, data.clone()).await.unwrap();
        let manifest = serde_json::json!({
            "sourceBucket": "src",
            "destinationBucket": "arn:aws:s3:::dest",
            "version": "2016-11-30",
            "creationTimestamp": "1764460800000",
            "fileFormat": format,
            "fileSchema": schema,
            "files": [{"key": data_key, "size": data.len(), "MD5checksum": md5_hex(&data)}],
        })
        .to_string();
        s.dest.put(&format!("src/cfg/{stamp}/manifest.json"), Bytes::from(manifest.clone())).await.unwrap();
        s.dest
            .put(&format!("src/cfg/{stamp}/manifest.checksum"), Bytes::from(md5_hex(manifest.as_bytes())))
            .await
            .unwrap();
        format!("s3://dest/src/cfg/{stamp}/manifest.json")
    }

    fn input(uri: &str) -> Location {
        Location::parse(uri).unwrap()
    }

    #[test]
    fn keys_are_url_decoded_unicode_included() {
        assert_eq!(decode_key("a+b%2Fc%C3%A9%E2%82%AC.txt").as_deref(), Some("a b/cé€.txt"));
        assert_eq!(decode_key("plain/key.csv").as_deref(), Some("plain/key.csv"));
        assert_eq!(decode_key("%2B%25").as_deref(), Some("+%"));
        assert_eq!(decode_key("bad%2"), None);
        assert_eq!(decode_key("%FF"), None);
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let c = Columns::from_names(&["ETag", " Size", "Key", "Bucket"], "m").unwrap();
        assert_eq!((c.key, c.size, c.etag, c.last_modified), (2, 1, 0, None));
        let parquet = ["bucket", "key", "size", "last_modified_date", "e_tag", "is_latest", "is_delete_marker"];
        let c = Columns::from_names(&parquet, "m").unwrap();
        assert_eq!(
            c,
            Columns { key: 1, size: 2, etag: 4, last_modified: Some(3), is_latest: Some(5), is_delete_marker: Some(6) }
        );
        let err = Columns::from_names(&["Bucket", "Key", "Size"], "s3://d/m.json").unwrap_err();
        assert!(err.is_bad_input() && err.to_string().contains("ETag"), "{err}");
    }

    #[tokio::test]
    async fn csv_rows_with_commas_quotes_and_unicode_keys_become_pinned_objects() {
        let s = setup();
        let rows = concat!(
            "\"src\",\"in/a%2Cb+%22q%22.txt\",\"v1\",\"true\",\"false\",\"5\",\"2026-11-30T10:00:00.000Z\",\"e1\",\"STANDARD\"\n",
            "\"src\",\"in/%C3%A9t%C3%A9%2F%E6%97%A5.txt\",\"v2\",\"true\",\"false\",\"7\",\"2026-11-30T11:00:00.000Z\",\"e2\",\"STANDARD\"\n",
            "\"src\",\"in/old.txt\",\"v0\",\"false\",\"false\",\"3\",\"2026-11-29T11:00:00.000Z\",\"e0\",\"STANDARD\"\n",
            "\"src\",\"in/gone.txt\",\"v9\",\"true\",\"true\",\"\",\"2026-11-29T11:00:00.000Z\",\"\",\"\"\n",
            "\"src\",\"other/x.txt\",\"v3\",\"true\",\"false\",\"1\",\"2026-11-30T11:00:00.000Z\",\"e3\",\"STANDARD\"\n",
            "\"src\",\"in/folder/\",\"v4\",\"true\",\"false\",\"0\",\"2026-11-30T11:00:00.000Z\",\"e4\",\"STANDARD\"\n",
        );
        let uri = deliver(&s, "2026-11-30T00-00Z", "CSV", SCHEMA, rows).await;
        let read = read(&s.stores, &uri, &input("s3://src/in/"), &|_| true).await.unwrap();
        let objects: Vec<ObjectMeta> = (0..read.objects.len()).map(|i| read.objects.meta(i)).collect();
        let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["a,b \"q\".txt", "été/日.txt"]);
        assert_eq!(objects[0].etag.as_deref(), Some("\"e1\""));
        assert_eq!(objects[1].size, 7);
        assert_eq!(objects[0].mtime_ns, crate::time::parse_time("2026-11-30T10:00:00Z").map(|ms| ms * 1_000_000));
        assert_eq!(read.listed, 2);
        let st = &read.stats;
        assert_eq!(
            (st.rows, st.skipped_not_latest, st.skipped_delete_markers, st.skipped_outside_prefix, st.files),
            (6, 1, 1, 1, 1)
        );
        assert_eq!(st.created_ms, Some(1_764_460_800_000));
        // A row shorter than the schema is an error naming it, not a row of empty fields that
        // would pass for a folder marker at the bucket's root.
        let short = deliver(&s, "2026-11-30T01-00Z", "CSV", SCHEMA, "\"src\"\n").await;
        let err = super::read(&s.stores, &short, &input("s3://src/"), &|_| true).await.unwrap_err();
        assert!(err.is_bad_input() && err.to_string().contains("has 1 columns"), "{err}");
        // The filter sees keys relative to the input.
        let read = super::read(&s.stores, &uri, &input("s3://src/in/"), &|k| k.starts_with("été")).await.unwrap();
        assert_eq!(read.objects.len(), 1);
        assert_eq!(read.listed, 2);
    }

    #[tokio::test]
    async fn a_local_copy_of_a_configuration_folder_is_read_as_the_bucket_is() {
        let s = setup();
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("cfg");
        std::fs::create_dir_all(config.join("data")).unwrap();
        std::fs::create_dir_all(config.join("2026-11-30T00-00Z")).unwrap();
        let row =
            "\"src\",\"in/x+y.txt\",\"\",\"true\",\"false\",\"4\",\"2026-11-30T10:00:00.000Z\",\"e\",\"STANDARD\"\n";
        let data = gzip(row).await;
        std::fs::write(config.join("data/part.csv.gz"), &data).unwrap();
        let manifest = serde_json::json!({
            "sourceBucket": "src",
            "destinationBucket": "arn:aws:s3:::elsewhere",
            "fileFormat": "CSV",
            "fileSchema": SCHEMA,
            // A destination with a prefix (`inv/`) writes it before SOURCE/CONFIG/.
            "files": [{"key": "inv/src/cfg/data/part.csv.gz", "size": data.len(), "MD5checksum": md5_hex(&data)}],
        })
        .to_string();
        std::fs::write(config.join("2026-11-30T00-00Z/manifest.json"), &manifest).unwrap();
        std::fs::write(config.join("2026-11-30T00-00Z/manifest.checksum"), md5_hex(manifest.as_bytes())).unwrap();
        let folder = config.display().to_string();
        let read = read(&s.stores, &folder, &input("s3://src/in/"), &|_| true).await.unwrap();
        assert_eq!(
            (0..read.objects.len()).map(|i| (read.objects.key(i), read.objects.size(i))).collect::<Vec<_>>(),
            [("x y.txt", 4)]
        );
        assert!(read.stats.manifest.ends_with("cfg/2026-11-30T00-00Z/manifest.json"), "{:?}", read.stats);
        // The delivery folder itself names the same inventory.
        let delivery = config.join("2026-11-30T00-00Z").display().to_string();
        let again = super::read(&s.stores, &delivery, &input("s3://src/in/"), &|_| true).await.unwrap();
        assert_eq!(again.objects, read.objects);
    }

    #[tokio::test]
    async fn a_checksum_mismatch_names_the_manifest() {
        let s = setup();
        let uri = deliver(&s, "2026-11-30T00-00Z", "CSV", SCHEMA, "").await;
        s.dest
            .put("src/cfg/2026-11-30T00-00Z/manifest.checksum", Bytes::from("0123456789abcdef0123456789abcdef"))
            .await
            .unwrap();
        let err = read(&s.stores, &uri, &input("s3://src/"), &|_| true).await.unwrap_err();
        assert!(err.is_bad_input(), "{err}");
        let text = err.to_string();
        assert!(text.contains(&uri) && text.contains("0123456789abcdef0123456789abcdef"), "{text}");
    }

    #[tokio::test]
    async fn a_changed_data_file_is_named() {
        let s = setup();
        let row = "\"src\",\"k\",\"\",\"true\",\"false\",\"1\",\"2026-11-30T10:00:00.000Z\",\"e\",\"STANDARD\"\n";
        let uri = deliver(&s, "2026-11-30T00-00Z", "CSV", SCHEMA, row).await;
        s.dest.put("src/cfg/data/2026-11-30T00-00Z.csv.gz", gzip(&row.repeat(2)).await).await.unwrap();
        let err = read(&s.stores, &uri, &input("s3://src/"), &|_| true).await.unwrap_err();
        assert!(err.is_bad_input(), "{err}");
        assert!(err.to_string().contains("s3://dest/src/cfg/data/2026-11-30T00-00Z.csv.gz"), "{err}");
    }

    #[tokio::test]
    async fn orc_and_other_buckets_are_refused_and_a_folder_takes_the_newest_complete_delivery() {
        let s = setup();
        let uri = deliver(&s, "2026-11-28T00-00Z", "ORC", SCHEMA, "").await;
        let err = read(&s.stores, &uri, &input("s3://src/"), &|_| true).await.unwrap_err();
        assert!(err.is_bad_input() && err.to_string().contains("ORC"), "{err}");
        let row = |k: &str| {
            format!("\"src\",\"{k}\",\"\",\"true\",\"false\",\"1\",\"2026-11-30T10:00:00.000Z\",\"e\",\"STANDARD\"\n")
        };
        let uri = deliver(&s, "2026-11-29T00-00Z", "CSV", SCHEMA, &row("older")).await;
        let err = read(&s.stores, &uri, &input("s3://other/"), &|_| true).await.unwrap_err();
        assert!(err.is_bad_input() && err.to_string().contains("`other`"), "{err}");
        deliver(&s, "2026-11-30T00-00Z", "CSV", SCHEMA, &row("newer")).await;
        // A newer delivery still being written (no checksum yet) is not taken.
        s.dest.put("src/cfg/2026-12-01T00-00Z/manifest.json", Bytes::from("{}")).await.unwrap();
        let read = read(&s.stores, "s3://dest/src/cfg/", &input("s3://src/"), &|_| true).await.unwrap();
        assert_eq!((0..read.objects.len()).map(|i| read.objects.key(i)).collect::<Vec<_>>(), ["newer"]);
        assert!(read.stats.manifest.ends_with("2026-11-30T00-00Z/manifest.json"), "{:?}", read.stats);
    }
}
