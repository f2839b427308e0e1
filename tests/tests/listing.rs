//! Parallel listing (issue 21) against moto: for adversarial key spaces, listing as many key
//! ranges at once gives exactly the keys of one stream, each once. Pages of 7 keys make these
//! small key spaces split as ten million keys would at 1,000 a page.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use batchfan::listing::{ListOptions, ListStats, list_counted, list_pages_of};
use batchfan::store::{ObjectMeta, S3Store, Store};
use batchfan_tests::proxy::{S3Faults, start_fixed_answer, start_s3_fault_proxy};
use batchfan_tests::{command, create_bucket, moto, run};
use futures_util::{StreamExt, TryStreamExt};

/// The key spaces, by prefix: what S3 users have.
fn key_spaces() -> BTreeMap<&'static str, Vec<String>> {
    let mut spaces = BTreeMap::new();
    // Flat and dense: every key under one prefix, numbered (the listing must descend digits).
    spaces.insert("flat/", (0..200).map(|i| format!("flat/{i:08}")).collect());
    // Hive partitions: the delimiter's common prefixes are the natural cuts.
    spaces.insert(
        "hive/",
        (0..5).flat_map(|d| (0..30).map(move |i| format!("hive/date=2026-11-{:02}/part-{i:04}.json", d + 1))).collect(),
    );
    // One huge folder beside tiny ones, and a deep tree.
    let mut mixed: Vec<String> = (0..150).map(|i| format!("mixed/huge/{i:05}.txt")).collect();
    mixed.extend(["mixed/a.txt", "mixed/tiny1/x", "mixed/tiny2/y", "mixed/zz/z"].map(String::from));
    mixed.extend((0..30).map(|i| format!("mixed/deep/a/b/c/d/e/{}/f/{i}", i % 3)));
    spaces.insert("mixed/", mixed);
    // Unicode, the delimiter inside names, spaces, punctuation, and keys that are prefixes of
    // others.
    let mut odd: Vec<String> = Vec::new();
    for i in 0..6 {
        for name in ["é", "日本", "a//b", "~", " lead", "\u{1F600}", "x:y", "UPPER", "mIxEd", "a", "a0", "a/"] {
            odd.push(format!("odd/{name}{i}"));
        }
    }
    odd.extend(["odd/a", "odd/a/", "odd/a/b", "odd/a/b/"].map(String::from));
    spaces.insert("odd/", odd);
    spaces.insert("empty/", Vec::new());
    spaces
}

async fn put_all(s3: &aws_sdk_s3::Client, bucket: &str, keys: Vec<String>) {
    futures_util::stream::iter(keys)
        .map(|key| {
            let s3 = s3.clone();
            async move {
                s3.put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(ByteStream::from(key.clone().into_bytes()))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

async fn listed(store: &dyn Store, prefix: &str, options: ListOptions) -> (Vec<String>, Arc<ListStats>) {
    let stats = Arc::new(ListStats::default());
    let objects: Vec<_> = list_counted(store, prefix, options, stats.clone()).try_collect().await.unwrap();
    let mut keys: Vec<String> = objects.into_iter().map(|o| o.key).collect();
    let count = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), count, "{prefix}: a key listed twice");
    (keys, stats)
}

#[tokio::test(flavor = "multi_thread")]
async fn ranges_listed_at_once_give_exactly_the_keys_of_one_stream() {
    let moto = moto();
    let s3 = moto.s3().await;
    create_bucket(&s3, "listing").await;
    let spaces = key_spaces();
    put_all(&s3, "listing", spaces.values().flatten().cloned().collect()).await;
    let store = S3Store::new(s3.clone(), "listing", "");
    for (prefix, keys) in &spaces {
        // What the listing must find: the keys, less folder markers (keys ending with `/`).
        let mut expected: Vec<String> = keys.iter().filter(|k| !k.ends_with('/')).cloned().collect();
        expected.sort();
        let (one, stats) = listed(&store, prefix, ListOptions::new(1)).await;
        assert_eq!(one, expected, "{prefix}: one stream");
        assert_eq!(stats.ranges(), 1);
        for concurrency in [3, 64] {
            let (many, stats) = listed(&store, prefix, ListOptions::new(concurrency).page_keys(7)).await;
            assert_eq!(many, expected, "{prefix} at {concurrency}: {} ranges", stats.ranges());
            if expected.len() > 100 {
                assert!(
                    stats.ranges() >= 3,
                    "{prefix} at {concurrency}: the listing was cut ({} ranges)",
                    stats.ranges()
                );
            }
        }
    }
    // Several prefixes listed together (as the literal prefixes of --include globs): their
    // ranges share the concurrency, and the pages hold exactly the keys of each prefix's stream.
    let prefixes: Vec<String> = ["flat/", "hive/date=2026-11-0", "mixed/huge/", "odd/a"].map(String::from).to_vec();
    let mut expected = Vec::new();
    for prefix in &prefixes {
        expected.extend(listed(&store, prefix, ListOptions::new(1)).await.0);
    }
    expected.sort();
    for concurrency in [1, 2, 8, 64] {
        let stats = Arc::new(ListStats::default());
        let options = ListOptions::new(concurrency).page_keys(7);
        let pages: Vec<Vec<ObjectMeta>> =
            list_pages_of(&store, &prefixes, options, stats.clone()).try_collect().await.unwrap();
        for page in &pages {
            assert!(page.windows(2).all(|w| w[0].key < w[1].key), "a page in key order");
        }
        let mut keys: Vec<String> = pages.into_iter().flatten().map(|o| o.key).collect();
        keys.sort();
        assert_eq!(keys, expected, "{concurrency} at once over {} ranges", stats.ranges());
        if concurrency > 4 {
            assert!(stats.ranges() > prefixes.len() as u64, "ranges were cut: {}", stats.ranges());
        }
    }

    // A prefix that is not a folder boundary, and the store's root.
    for prefix in ["mixed/hu", "odd/a", ""] {
        let (one, _) = listed(&store, prefix, ListOptions::new(1)).await;
        let (many, stats) = listed(&store, prefix, ListOptions::new(16).page_keys(5)).await;
        assert_eq!(many, one, "{prefix:?}: {} ranges", stats.ranges());
    }
    // Under a store rooted below the bucket's top, keys are relative to it.
    let below = S3Store::new(s3, "listing", "mixed/");
    let (one, _) = listed(&below, "", ListOptions::new(1)).await;
    let (many, _) = listed(&below, "", ListOptions::new(32).page_keys(3)).await;
    assert_eq!(many, one);
    assert!(one.contains(&"huge/00000.txt".to_string()), "{one:?}");
}

// `S3Store` reads ListObjectsV2 bodies itself (`list_xml`), not through the SDK's decoder: on
// moto's real responses, for keys with XML's special characters, multipart ETags, folder markers
// and several pages, it finds exactly what the SDK decodes (key, size, ETag, modification time),
// and no page falls back to the SDK.
#[tokio::test(flavor = "multi_thread")]
async fn the_fast_listing_reader_finds_what_the_sdk_decodes() {
    let moto = moto();
    let s3 = moto.s3().await;
    create_bucket(&s3, "listing-xml").await;
    let odd = ["a&b", "<tag>", "quote\"d", "it's", "tab\there", "caf\u{e9}", "\u{1F600}", "amp;&amp;", "dir/"];
    let mut keys: Vec<String> = odd.iter().map(|k| format!("xml/{k}")).collect();
    keys.extend((0..40).map(|i| format!("xml/n/{i:03}")));
    put_all(&s3, "listing-xml", keys).await;
    // A multipart object: its ETag has a part count.
    let (bucket, key) = ("listing-xml", "xml/multi&part");
    let upload = s3.create_multipart_upload().bucket(bucket).key(key).send().await.unwrap();
    let id = upload.upload_id().unwrap();
    let mut parts = CompletedMultipartUpload::builder();
    for n in 1..=2 {
        let body = ByteStream::from(vec![b'x'; 5 << 20]);
        let done =
            s3.upload_part().bucket(bucket).key(key).upload_id(id).part_number(n).body(body).send().await.unwrap();
        parts = parts.parts(CompletedPart::builder().part_number(n).e_tag(done.e_tag().unwrap()).build());
    }
    let parts = parts.build();
    s3.complete_multipart_upload().bucket(bucket).key(key).upload_id(id).multipart_upload(parts).send().await.unwrap();

    // What the SDK decodes, pages of 7 keys.
    let mut decoded = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix("xml/").max_keys(7).into_paginator().send();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            let key = o.key().unwrap().strip_prefix("xml/").unwrap().to_string();
            if key.ends_with('/') {
                continue;
            }
            let t = o.last_modified().unwrap();
            let mtime = t.secs() as u64 * 1_000_000_000 + u64::from(t.subsec_nanos());
            decoded.push((key, o.size().unwrap() as u64, o.e_tag().map(str::to_string), Some(mtime)));
        }
    }
    assert_eq!(decoded.len(), 49, "{decoded:?}");
    assert!(decoded.iter().any(|o| o.2.as_deref().is_some_and(|e| e.ends_with("-2\""))), "{decoded:?}");

    let store = S3Store::new(s3.clone(), bucket, "xml/");
    let read = |objects: Vec<ObjectMeta>| -> Vec<_> {
        objects.into_iter().map(|o| (o.key, o.size, o.etag, o.mtime_ns)).collect()
    };
    let one = read(store.list("").try_collect().await.unwrap());
    assert_eq!(one, decoded, "one stream");
    let stats = Arc::new(ListStats::default());
    let listed = list_counted(&store, "", ListOptions::new(8).page_keys(7), stats.clone());
    let mut many = read(listed.try_collect().await.unwrap());
    many.sort();
    assert_eq!(many, decoded, "ranges at once ({} ranges)", stats.ranges());
    assert_eq!(store.listing_pages_read_by_sdk(), 0, "every page was read by the fast reader");

    // Listing bodies cut mid-way (and 503s) are retried: the same objects.
    let faults = S3Faults { cut_listings_percent: 25, error_percent: 10, seed: 11, ..Default::default() };
    let proxy = start_s3_fault_proxy(&moto.endpoint, faults);
    let retry = aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(10);
    let config = s3.config().to_builder().endpoint_url(&proxy.endpoint).retry_config(retry).build();
    let faulty = S3Store::new(aws_sdk_s3::Client::from_conf(config), bucket, "xml/");
    let one = read(faulty.list("").try_collect().await.unwrap());
    assert_eq!(one, decoded, "one stream through cuts");
    let listed = list_counted(&faulty, "", ListOptions::new(8).page_keys(7), Arc::default());
    let mut many = read(listed.try_collect().await.unwrap());
    many.sort();
    assert_eq!(many, decoded, "ranges at once through cuts");
    let cuts = proxy.stats.cuts.load(std::sync::atomic::Ordering::SeqCst);
    assert!(cuts >= 3, "too few listings cut to mean anything: {cuts}");
}

// A server that says a listing goes on but repeats the token (or gives none) would make one
// stream list the same page forever, or stop short without a word; both are errors naming it.
#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_listing_without_a_new_token_is_an_error() {
    let same = "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken>\
                <Contents><Key>a</Key><Size>1</Size></Contents></ListBucketResult>";
    let none = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a</Key><Size>1</Size></Contents></ListBucketResult>";
    let s3 = moto().s3().await;
    for (body, says) in [(same, "the same continuation token"), (none, "no continuation token")] {
        let config = s3.config().to_builder().endpoint_url(start_fixed_answer(body)).build();
        let store = S3Store::new(aws_sdk_s3::Client::from_conf(config), "broken", "");
        let listed = tokio::time::timeout(std::time::Duration::from_secs(60), store.list("").try_collect::<Vec<_>>())
            .await
            .expect("the listing ends");
        let message = listed.expect_err("a listing that cannot go on is an error").to_string();
        assert!(message.contains(says) && message.contains("ListObjectsV2"), "{message}");
    }
}

// A server that ignores StartAfter would make ranges overlap: listing them at once is refused
// with a message naming the fix, not a plan with keys twice. (S3 directory buckets, which ignore
// it, are listed as one stream by name; the SDK talks to them through CreateSession, which moto
// does not serve, so that is not tested here.)
#[tokio::test(flavor = "multi_thread")]
async fn a_server_ignoring_start_after_is_named() {
    let moto = moto();
    let s3 = moto.s3().await;
    create_bucket(&s3, "listing-start-after").await;
    let keys: Vec<String> = (0..60).map(|i| format!("flat/{i:04}")).collect();
    put_all(&s3, "listing-start-after", keys.clone()).await;
    let proxy = start_s3_fault_proxy(&moto.endpoint, S3Faults { drop_start_after: true, ..Default::default() });
    let config = s3.config().to_builder().endpoint_url(&proxy.endpoint).build();
    let ignoring = S3Store::new(aws_sdk_s3::Client::from_conf(config), "listing-start-after", "");
    let one: Vec<ObjectMeta> = ignoring.list("flat/").try_collect().await.unwrap();
    assert_eq!(one.len(), 60, "one stream needs no StartAfter");
    let listed = list_counted(&ignoring, "flat/", ListOptions::new(8).page_keys(7), Arc::default());
    let message = listed.try_collect::<Vec<_>>().await.expect_err("overlapping ranges").to_string();
    assert!(message.contains("does not honour StartAfter") && message.contains("--list-concurrency 1"), "{message}");
}

// Keys created and deleted while ranges are listed at once: as with one stream, a listing is a
// sequence of requests, not a snapshot. Every key that existed throughout is listed, exactly
// once; nothing is listed twice or made up; a key written or deleted meanwhile may or may not be
// seen (what a run then reads is pinned by the ETags listed).
#[tokio::test(flavor = "multi_thread")]
async fn writers_during_a_listing_change_only_the_keys_they_write() {
    let moto = moto();
    let s3 = moto.s3().await;
    let bucket = "listing-writers";
    create_bucket(&s3, bucket).await;
    let before: Vec<String> = (0..300).map(|i| format!("w/{i:04}")).collect();
    put_all(&s3, bucket, before.clone()).await;
    let deleted: Vec<String> = before.iter().step_by(10).cloned().collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (s3, stop, deleted, writes) = (s3.clone(), stop.clone(), deleted.clone(), writes.clone());
        tokio::spawn(async move {
            let mut created = Vec::new();
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::SeqCst) && i >= deleted.len() {
                    break;
                }
                // New keys land inside every range: between old ones, and past the last.
                let key = format!("w/{:04}-new{i}", (i * 37) % 320);
                s3.put_object().bucket(bucket).key(&key).body(ByteStream::from_static(b"n")).send().await.unwrap();
                created.push(key);
                writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if let Some(gone) = deleted.get(i) {
                    s3.delete_object().bucket(bucket).key(gone).send().await.unwrap();
                }
            }
            created
        })
    };
    let store = S3Store::new(s3.clone(), bucket, "");
    let stats = Arc::new(ListStats::default());
    let listed = list_counted(&store, "w/", ListOptions::new(8).page_keys(7), stats.clone());
    let listed: Vec<String> = listed.map_ok(|o| o.key).try_collect().await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let during = writes.load(std::sync::atomic::Ordering::SeqCst);
    let created = writer.await.unwrap();
    assert!(during >= 3, "the writer wrote while the listing ran ({during} writes)");
    assert!(stats.ranges() >= 3, "the listing was cut: {} ranges", stats.ranges());
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), listed.len(), "a key listed twice");
    for key in before.iter().filter(|k| !deleted.contains(k)) {
        assert!(unique.binary_search(key).is_ok(), "{key} existed throughout and was not listed");
    }
    for key in &unique {
        assert!(before.contains(key) || created.contains(key), "{key} was never written");
    }
}

// The plan of a parallel listing is the plan of one stream: same items, same order, same chunks
// (`plan --format json` prints every figure; the manifest's chunk table is compared through
// `run --local`'s manifest in the other tests). `--list-concurrency 0` is bad input.
#[tokio::test(flavor = "multi_thread")]
async fn plans_are_the_same_whatever_the_list_concurrency() {
    let moto = moto();
    let s3 = moto.s3().await;
    create_bucket(&s3, "listing-plan").await;
    put_all(&s3, "listing-plan", (0..1_100).map(|i| format!("in/{:03}/{i:05}.txt", i % 17)).collect()).await;
    let plan_with = |concurrency: &str, extra: &[&str]| {
        let out = run(command("batchfan", Some(moto))
            .args([
                "plan",
                "--format",
                "json",
                "--input",
                "s3://listing-plan/in/",
                "--max-items-per-chunk",
                "100",
                "--list-concurrency",
                concurrency,
            ])
            .args(extra));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let plan = |concurrency: &str| plan_with(concurrency, &[]);
    let (code, one, _) = plan("1");
    assert_eq!(code, Some(0));
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["objects"], 1_100);
    for concurrency in ["4", "64"] {
        let (code, many, _) = plan(concurrency);
        assert_eq!(code, Some(0));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&many).unwrap(), one, "--list-concurrency {concurrency}");
    }
    // Several --include prefixes, each listed in ranges at once: the same plan as one stream.
    let includes = ["--include", "003/**", "--include", "011/*.txt", "--include", "016/0*", "--include", "005/0000*"];
    let (code, one, _) = plan_with("1", &includes);
    assert_eq!(code, Some(0));
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["objects"], 65 + 65 + 64 + 1, "{one}");
    for concurrency in ["2", "3", "64"] {
        let (code, many, _) = plan_with(concurrency, &includes);
        assert_eq!(code, Some(0));
        let many: serde_json::Value = serde_json::from_str(&many).unwrap();
        assert_eq!(many, one, "--include prefixes at --list-concurrency {concurrency}");
    }
    let (code, _, stderr) = plan("0");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--list-concurrency"), "{stderr}");
}

// Incremental runs (issue 21): a run over grown data with --skip-done of yesterday's output
// processes only the new and the changed objects (a split object counts as done only when all
// its ranges were committed); --modified-after TIME|RUN keeps objects modified later. Both are
// in plan's summary.
#[test]
fn skip_done_and_modified_after_plan_only_new_and_changed_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, day1, day2) = (tmp.path().join("in"), tmp.path().join("day1"), tmp.path().join("day2"));
    std::fs::create_dir_all(&input).unwrap();
    for i in 0..6 {
        std::fs::write(input.join(format!("f{i}.txt")), format!("old line {i}\n").repeat(50)).unwrap();
    }
    let home = tmp.path().join("home");
    let batchfan = || {
        let mut cmd = command("batchfan", None);
        cmd.env("BATCHFAN_HOME", &home);
        cmd
    };
    let worker = batchfan_tests::bin("batchfan-worker").display().to_string();
    let out = run(batchfan()
        .args(["run", "--local", "--format", "json", "--max-items-per-chunk", "2", "--split-bytes", "300", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&day1)
        .args(["--", &worker, "wordcount"]));
    assert_eq!(out.status.code(), Some(0));
    let day1_run =
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["run_id"].as_str().unwrap().to_string();
    // mtimes are compared in ms: the changes come strictly later.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(input.join("f1.txt"), "changed\n").unwrap();
    std::fs::write(input.join("new.txt"), "new\n").unwrap();
    let plan = |extra: &[&str]| {
        let out = run(batchfan().args(["plan", "--format", "json", "--input"]).arg(&input).args(extra));
        (out.status.code(), serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default(), out.stderr)
    };
    let day1_text = day1.display().to_string();
    let (code, skipped, _) = plan(&["--skip-done", &day1_text]);
    assert_eq!(code, Some(0));
    assert_eq!((skipped["objects"].as_u64(), skipped["left_out_done"].as_u64()), (Some(2), Some(5)), "{skipped}");
    let keys: Vec<&str> = skipped["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| [c["first_key"].as_str().unwrap(), c["last_key"].as_str().unwrap()])
        .collect();
    assert!(keys.iter().all(|k| *k == "f1.txt" || *k == "new.txt"), "{skipped}");
    let (code, after, _) = plan(&["--modified-after", &day1_run]);
    assert_eq!(code, Some(0));
    assert_eq!((after["objects"].as_u64(), after["left_out_unmodified"].as_u64()), (Some(2), Some(5)), "{after}");
    let (code, all, _) = plan(&["--modified-after", "2000-01-01"]);
    assert_eq!((code, all["objects"].as_u64(), all["left_out_unmodified"].as_u64()), (Some(0), Some(7), Some(0)));
    let (code, _, stderr) = plan(&["--modified-after", "last tuesday"]);
    assert_eq!(code, Some(2));
    assert!(String::from_utf8_lossy(&stderr).contains("--modified-after"));
    let text = run(batchfan().args(["plan", "--input"]).arg(&input).args(["--skip-done", &day1_text]));
    assert!(String::from_utf8_lossy(&text.stdout).contains("left out: 5 already committed (--skip-done)"));

    // A run over the grown input with --skip-done processes just the two; nothing left is an
    // empty input (exit 2) unless --allow-empty.
    let out = run(batchfan()
        .args(["run", "--local", "--format", "json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&day2)
        .args(["--skip-done", &day1_text, "--", &worker, "wordcount"]));
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["items"], 2, "{summary}");
    let day2_text = day2.display().to_string();
    let (code, _, stderr) = plan(&["--skip-done", &day1_text, "--skip-done", &day2_text]);
    assert_eq!(code, Some(2));
    assert!(
        String::from_utf8_lossy(&stderr).contains("already committed in --skip-done"),
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    let (code, none, _) = plan(&["--skip-done", &day1_text, "--skip-done", &day2_text, "--allow-empty"]);
    assert_eq!((code, none["chunk_count"].as_u64(), none["left_out_done"].as_u64()), (Some(0), Some(0), Some(7)));
}

// On S3 the time is LastModified, and --skip-done compares ETags.
#[tokio::test(flavor = "multi_thread")]
async fn skip_done_on_s3_compares_etags() {
    let moto = moto();
    let s3 = moto.s3().await;
    create_bucket(&s3, "incremental").await;
    put_all(&s3, "incremental", (0..4).map(|i| format!("in/f{i}.txt")).collect()).await;
    let out = run(command("batchfan", Some(moto))
        .args([
            "run",
            "--local",
            "--format",
            "json",
            "--input",
            "s3://incremental/in/",
            "--output",
            "s3://incremental/day1/",
            "--",
        ])
        .arg(batchfan_tests::bin("batchfan-worker"))
        .arg("count"));
    assert_eq!(out.status.code(), Some(0));
    s3.put_object()
        .bucket("incremental")
        .key("in/f2.txt")
        .body(ByteStream::from_static(b"changed\n"))
        .send()
        .await
        .unwrap();
    let out = run(command("batchfan", Some(moto)).args([
        "plan",
        "--format",
        "json",
        "--input",
        "s3://incremental/in/",
        "--skip-done",
        "s3://incremental/day1/",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((plan["objects"].as_u64(), plan["left_out_done"].as_u64()), (Some(1), Some(3)), "{plan}");
    assert_eq!(plan["chunks"][0]["first_key"], "f2.txt");
}
