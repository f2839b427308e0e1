//! S3 Inventory deliveries written as AWS writes them (`--input-inventory` tests and the
//! `inventory_gen` benchmark generator): CSV.gz and Parquet data files.

use std::sync::Arc;

/// The CSV columns of an inventory with every field batchfan reads, in AWS's order.
pub const CSV_SCHEMA: [&str; 9] =
    ["Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ETag", "StorageClass"];

/// One inventory row: what S3 Inventory reports of an object version.
#[derive(Debug, Clone)]
pub struct Row {
    pub key: String,
    pub version: Option<String>,
    pub is_latest: bool,
    pub is_delete_marker: bool,
    pub size: Option<i64>,
    pub last_modified_ms: i64,
    pub etag: Option<String>,
}

/// URL-encodes a key as S3 Inventory CSV does (form encoding: `+` for a space).
pub fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => (b as char).to_string(),
            b' ' => "+".to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

pub fn iso(ms: i64) -> String {
    // The library's civil-date formatter (`2026-11-30 10:52:49`), in the inventory's spelling.
    let second = batchfan::logs::utc_timestamp(ms.max(0) as u64).replace(' ', "T");
    format!("{second}.{:03}Z", ms.rem_euclid(1000))
}

/// A CSV data file as AWS writes it: gzip, every field quoted, keys URL-encoded, columns in
/// `schema` order.
pub fn csv_gz(bucket: &str, rows: &[Row], schema: &[&str]) -> Vec<u8> {
    let mut text = String::new();
    for r in rows {
        let fields: Vec<String> = schema
            .iter()
            .map(|column| match *column {
                "Bucket" => bucket.to_string(),
                "Key" => encode_key(&r.key),
                "VersionId" => r.version.clone().unwrap_or_default(),
                "IsLatest" => r.is_latest.to_string(),
                "IsDeleteMarker" => r.is_delete_marker.to_string(),
                "Size" => r.size.map(|s| s.to_string()).unwrap_or_default(),
                "LastModifiedDate" => iso(r.last_modified_ms),
                "ETag" => r.etag.clone().unwrap_or_default(),
                "StorageClass" => "STANDARD".to_string(),
                other => panic!("column {other}"),
            })
            .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
            .collect();
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    crate::compress(text.as_bytes(), crate::Compress::Gzip)
}

pub const PARQUET_SCHEMA: &str = "message s3.inventory { required binary bucket (STRING); required binary key (STRING); optional binary version_id (STRING); optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; optional int64 last_modified_date (TIMESTAMP(MILLIS,true)); optional binary e_tag (STRING); optional binary storage_class (STRING); }";

/// A Parquet data file as AWS writes it (Snappy pages, the schema of [`PARQUET_SCHEMA`]).
pub fn parquet_file(bucket: &str, rows: &[Row]) -> Vec<u8> {
    use parquet::basic::Compression;
    use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;

    let schema = Arc::new(parquet::schema::parser::parse_message_type(PARQUET_SCHEMA).unwrap());
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let text = |values: Vec<Option<String>>| {
        let levels: Vec<i16> = values.iter().map(|v| i16::from(v.is_some())).collect();
        let present: Vec<ByteArray> = values.into_iter().flatten().map(|s| ByteArray::from(s.into_bytes())).collect();
        (present, levels)
    };
    let mut index = 0;
    while let Some(mut column) = group.next_column().unwrap() {
        match index {
            0 | 1 => {
                let values: Vec<ByteArray> = rows
                    .iter()
                    .map(|r| {
                        ByteArray::from(if index == 0 {
                            bucket.as_bytes().to_vec()
                        } else {
                            r.key.clone().into_bytes()
                        })
                    })
                    .collect();
                column.typed::<ByteArrayType>().write_batch(&values, None, None).unwrap();
            }
            2 | 7 | 8 => {
                let (values, levels) = text(
                    rows.iter()
                        .map(|r| match index {
                            2 => r.version.clone(),
                            7 => r.etag.clone(),
                            _ => Some("STANDARD".to_string()),
                        })
                        .collect(),
                );
                column.typed::<ByteArrayType>().write_batch(&values, Some(&levels), None).unwrap();
            }
            3 | 4 => {
                let values: Vec<bool> =
                    rows.iter().map(|r| if index == 3 { r.is_latest } else { r.is_delete_marker }).collect();
                column.typed::<BoolType>().write_batch(&values, Some(&vec![1; rows.len()]), None).unwrap();
            }
            5 | 6 => {
                let values: Vec<Option<i64>> =
                    rows.iter().map(|r| if index == 5 { r.size } else { Some(r.last_modified_ms) }).collect();
                let levels: Vec<i16> = values.iter().map(|v| i16::from(v.is_some())).collect();
                let present: Vec<i64> = values.into_iter().flatten().collect();
                column.typed::<Int64Type>().write_batch(&present, Some(&levels), None).unwrap();
            }
            other => panic!("column {other}"),
        }
        column.close().unwrap();
        index += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
    out
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
