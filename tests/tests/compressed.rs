//! Compressed inputs and outputs: never split, decompressed on open (by extension or
//! `Content-Encoding`), counted as their plain twins; a truncated one fails naming its key.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use batchfan_tests::{
    Compress, command, compress, create_bucket, decompress, download_prefix, files, merge_counts, moto, part_bodies,
    reference_wordcount, run, write_dataset,
};

fn worker() -> String {
    batchfan_tests::bin("batchfan-worker").display().to_string()
}

/// Runs wordcount locally from `input` to `output` with `extra` options; asserts exit 0 and
/// returns the parts' bodies.
fn wordcount_parts(input: &Path, output: &Path, extra: &[&str]) -> Vec<Vec<u8>> {
    let out = run(command("batchfan", None)
        .args(["run", "--local"])
        .args(extra)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(["--", &worker(), "wordcount"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    files(output).into_iter().filter(|(k, _)| k.starts_with("part-")).map(|(_, p)| std::fs::read(p).unwrap()).collect()
}

/// Writes the dataset twice: plain under `plain`, and under `packed` every file compressed, gzip
/// and zstd in turn (`big.txt` as gzip, larger than the split size used below).
fn packed_twins(plain: &Path, packed: &Path) -> usize {
    write_dataset(plain, 31);
    let mut big_ones = 0;
    for (i, (key, path)) in files(plain).into_iter().enumerate() {
        let body = std::fs::read(path).unwrap();
        let (how, ext) = if i % 2 == 0 || key == "big.txt" { (Compress::Gzip, "gz") } else { (Compress::Zstd, "zst") };
        let target = packed.join(format!("{key}.{ext}"));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let data = compress(&body, how);
        big_ones += usize::from(data.len() > 1024);
        std::fs::write(target, data).unwrap();
    }
    big_ones
}

#[test]
fn gzip_and_zstd_inputs_count_as_their_plain_twins_and_are_never_split() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, packed, output) = (tmp.path().join("plain"), tmp.path().join("packed"), tmp.path().join("out"));
    let big_ones = packed_twins(&plain, &packed);
    assert!(big_ones >= 1, "the dataset needs a compressed object above the split size");

    let out = run(command("batchfan", None)
        .args(["plan", "--format", "json", "--split-bytes", "1KiB", "--input"])
        .arg(&packed));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["kept_whole_compressed"], big_ones);
    assert_eq!(plan["items"], plan["objects"], "no compressed object may be split: {plan}");
    let out = run(command("batchfan", None).args(["plan", "--split-bytes", "1KiB", "--input"]).arg(&packed));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{big_ones} compressed object")) && text.contains("kept whole"), "{text}");

    let parts = wordcount_parts(&packed, &output, &["--children", "3", "--split-bytes", "1KiB"]);
    assert_eq!(merge_counts(parts.iter().map(Vec::as_slice)), reference_wordcount(&plain));
}

#[test]
fn outputs_are_compressed_when_asked_and_keys_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 32);
    for (how, ext) in [("gzip", ".gz"), ("zstd", ".zst")] {
        let out = run(command("batchfan", None)
            .env("BATCHFAN_OUTPUT_COMPRESSION", how)
            .args(["run", "--local", "--overwrite", "--children", "3", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .args(["--", &worker(), "wordcount"]));
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let parts: Vec<(String, Vec<u8>)> = files(&output)
            .into_iter()
            .filter(|(k, _)| k.starts_with("part-"))
            .map(|(k, p)| (k, std::fs::read(p).unwrap()))
            .collect();
        assert_eq!(parts.len(), 3);
        assert!(
            parts.iter().all(|(k, _)| k.ends_with(ext)),
            "{how}: {:?}",
            parts.iter().map(|p| &p.0).collect::<Vec<_>>()
        );
        let plain: Vec<Vec<u8>> = parts.iter().map(|(_, body)| decompress(body)).collect();
        assert!(parts.iter().zip(&plain).all(|((_, c), p)| c != p), "{how}: outputs were not compressed");
        assert_eq!(merge_counts(plain.iter().map(Vec::as_slice)), reference_wordcount(&input));
    }
    let out = run(command("batchfan", None)
        .env("BATCHFAN_OUTPUT_COMPRESSION", "lz5")
        .args(["run", "--local", "--overwrite", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", &worker(), "wordcount"]));
    // The child refuses the setting as bad configuration (exit 2); the run failed (exit 1), and
    // nothing was committed.
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    let status = run(command("batchfan", None).args(["status", "--format", "json"]).arg(&output));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let failed = &status["failed"][0];
    assert_eq!(failed["exit_code"].as_i64(), Some(2), "{status}");
    assert!(failed["reason"].as_str().unwrap_or_default().contains("BATCHFAN_OUTPUT_COMPRESSION"), "{status}");
    let parts: Vec<_> = files(&output).into_iter().filter(|(name, _)| name.starts_with("part-")).collect();
    assert!(parts.is_empty(), "nothing committed: {parts:?}");
}

#[test]
fn a_truncated_gzip_input_fails_its_chunk_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir_all(&input).unwrap();
    let text: String = (0..5000).map(|i| format!("word{} other\n", i % 97)).collect();
    let gz = compress(text.as_bytes(), Compress::Gzip);
    std::fs::write(input.join("good.txt.gz"), &gz).unwrap();
    std::fs::write(input.join("cut.txt.gz"), &gz[..gz.len() / 2]).unwrap();
    let out = run(command("batchfan", None)
        .args(["run", "--local", "--format", "json", "--max-items-per-chunk", "1", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", &worker(), "wordcount"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    // The failed child's log names the key and the format.
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let logs: String = files(Path::new(summary["log_dir"].as_str().unwrap()))
        .into_iter()
        .map(|(_, p)| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(logs.contains("cut.txt.gz") && logs.contains("not valid gzip data"), "{logs}\n{summary}");
    // The good chunk committed; the cut one did not.
    let parts: Vec<String> = files(&output).into_iter().map(|(k, _)| k).filter(|k| k.starts_with("part-")).collect();
    assert_eq!(parts, vec!["part-00001".to_string()], "chunk 0 is cut.txt.gz, chunk 1 good.txt.gz");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_objects_compressed_by_content_encoding_or_extension_stay_whole_and_decode() {
    let moto = moto();
    let s3 = moto.s3().await;
    create_bucket(&s3, "cz-in").await;
    create_bucket(&s3, "cz-out").await;
    let text: String = (0..4000).map(|i| format!("w{} common {}\n", i % 53, i % 7)).collect();
    let gz = compress(text.as_bytes(), Compress::Gzip);
    let zst = compress(text.as_bytes(), Compress::Zstd);
    assert!(gz.len() > 1024 && zst.len() > 1024, "{} {}", gz.len(), zst.len());
    // No telling extension: only its Content-Encoding says it is gzip.
    s3.put_object()
        .bucket("cz-in")
        .key("d/events.json")
        .content_encoding("gzip")
        .body(ByteStream::from(gz))
        .send()
        .await
        .unwrap();
    s3.put_object().bucket("cz-in").key("d/more.json.zst").body(ByteStream::from(zst)).send().await.unwrap();
    s3.put_object()
        .bucket("cz-in")
        .key("d/plain.txt")
        .body(ByteStream::from(text.clone().into_bytes()))
        .send()
        .await
        .unwrap();

    let batchfan = || command("batchfan", Some(moto));
    let out = run(batchfan().args(["plan", "--format", "json", "--split-bytes", "1KiB", "--input", "s3://cz-in/d/"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["kept_whole_compressed"], 2, "{plan}");
    let plain_pieces = (text.len() as u64).div_ceil(1024);
    assert_eq!(plan["items"], 2 + plain_pieces, "{plan}");

    let out = run(batchfan()
        .args(["run", "--local", "--children", "2", "--split-bytes", "1KiB", "--input", "s3://cz-in/d/"])
        .args(["--output", "s3://cz-out/o/", "--", &worker(), "wordcount"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let objects = download_prefix(&s3, "cz-out", "o/").await;
    let mut expected = std::collections::BTreeMap::new();
    for word in text.split_ascii_whitespace() {
        *expected.entry(word.as_bytes().to_vec()).or_insert(0u64) += 3;
    }
    assert_eq!(merge_counts(part_bodies(&objects, "o/")), expected);
}

// The csv_to_jsonl example stacks csv-async on the ItemReader (AsyncRead) and a BufWriter on the
// Output (AsyncWrite); gzip and zstd CSV inputs read as their plain twins.
#[test]
fn the_csv_example_reads_csv_through_a_csv_crate_and_writes_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir_all(&input).unwrap();
    let csv = |n: usize| -> String {
        std::iter::once("id,name,note\n".to_string())
            .chain((0..n).map(|i| format!("{i},name {i},\"quoted, with comma {i}\"\n")))
            .collect()
    };
    std::fs::write(input.join("a.csv"), csv(3)).unwrap();
    std::fs::write(input.join("b.csv.gz"), compress(csv(500).as_bytes(), Compress::Gzip)).unwrap();
    std::fs::write(input.join("c.csv.zst"), compress(csv(40).as_bytes(), Compress::Zstd)).unwrap();
    let out = run(command("batchfan", None)
        .args(["run", "--local", "--children", "2", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--")
        .arg(batchfan_tests::bin("csv_to_jsonl")));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> = files(&output)
        .into_iter()
        .filter(|(k, _)| k.starts_with("part-"))
        .flat_map(|(_, p)| {
            std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(rows.len(), 3 + 500 + 40);
    let last_b = rows.iter().find(|r| r["_key"] == "b.csv.gz" && r["id"] == "499").expect("row 499 of b.csv.gz");
    assert_eq!(last_b["note"], "quoted, with comma 499");
    assert_eq!(rows.iter().filter(|r| r["_key"] == "c.csv.zst").count(), 40);
}

// Issue 22, item 13: every codec is decoded, and an input of two members (gzip members, zstd
// frames, bzip2 streams, xz streams: what `cat a.gz b.gz` and parallel compressors make) reads
// as one stream, as the README promises: the word counts equal those of the plain text.
#[test]
fn every_codec_decodes_and_two_members_read_as_one_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, packed, output) = (tmp.path().join("plain"), tmp.path().join("packed"), tmp.path().join("out"));
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::create_dir_all(&packed).unwrap();
    let codecs = [(Compress::Gzip, "gz"), (Compress::Zstd, "zst"), (Compress::Bzip2, "bz2"), (Compress::Xz, "xz")];
    for (i, (how, ext)) in codecs.into_iter().enumerate() {
        // The second member starts mid-line: the line crosses the member boundary.
        let first = format!("alpha {ext} beta\ngamma {i} del");
        let second = format!("ta {ext}\nomega omega {ext}\n");
        std::fs::write(plain.join(format!("f{i}.txt")), format!("{first}{second}")).unwrap();
        let mut data = compress(first.as_bytes(), how);
        data.extend(compress(second.as_bytes(), how));
        std::fs::write(packed.join(format!("f{i}.txt.{ext}")), data).unwrap();
    }
    let parts = wordcount_parts(&packed, &output, &["--children", "2"]);
    let counts = merge_counts(parts.iter().map(Vec::as_slice));
    assert_eq!(counts, reference_wordcount(&plain));
    assert_eq!(counts.get(b"delta".as_slice()).copied(), Some(4), "the word split across members: {counts:?}");
}
