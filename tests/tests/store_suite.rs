//! One suite over every store backend (`batchfan_tests::store_suite`, one named function per
//! behaviour): the local folder store, the S3 store (moto) and the in-memory store must behave
//! the same for listing, ranged and version-pinned reads, atomic and conditional puts, deletes.

use std::sync::Arc;

use batchfan::Error;
use batchfan::Location;
use batchfan::store::{ByteRange, LocalStore, MemoryStore, S3Store, Store, read_all};
use batchfan_tests::{create_bucket, moto, store_suite};
use bytes::Bytes;

#[tokio::test(flavor = "multi_thread")]
async fn local_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    store_suite::run_all(|name| {
        let path = root.join(name);
        async move {
            std::fs::create_dir_all(&path).unwrap();
            Arc::new(LocalStore::new(Location::parse(&path.display().to_string()).unwrap())) as Arc<dyn Store>
        }
    })
    .await;
    let missing = LocalStore::new(Location::parse(&dir.path().join("none").display().to_string()).unwrap());
    assert!(matches!(missing.check_root().await, Err(Error::NotFound { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_store() {
    store_suite::run_all(|name| async move {
        Arc::new(MemoryStore::new(Location::parse(&format!("s3://memory/{name}/")).unwrap())) as Arc<dyn Store>
    })
    .await;
}

// Issue 6: a local store refuses keys that would leave its root, so a crafted manifest cannot
// make a worker read or write outside its locations.
#[tokio::test(flavor = "multi_thread")]
async fn a_local_store_refuses_keys_that_leave_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(dir.path().join("secret.txt"), b"outside").unwrap();
    let store = LocalStore::new(Location::parse(&root.display().to_string()).unwrap());
    for bad in ["../secret.txt", "a/../../secret.txt", "/etc/passwd", ".."] {
        let err = read_all(&store, bad, None, None).await.unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }) && err.is_bad_input(), "{bad}: {err}");
        assert!(matches!(store.head(bad).await, Err(Error::InvalidKey { .. })), "{bad}");
        assert!(matches!(store.put(bad, Bytes::from_static(b"x")).await, Err(Error::InvalidKey { .. })), "{bad}");
        assert!(matches!(store.delete(bad).await, Err(Error::InvalidKey { .. })), "{bad}");
    }
    assert_eq!(std::fs::read(dir.path().join("secret.txt")).unwrap(), b"outside", "untouched");
    // Dots inside names are fine.
    store.put("a..b/..c", Bytes::from_static(b"ok")).await.unwrap();
    assert_eq!(&read_all(&store, "a..b/..c", None, None).await.unwrap()[..], b"ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_store() {
    let moto = moto();
    let s3 = moto.s3().await;
    create_bucket(&s3, "store-suite").await;
    let client = s3.clone();
    store_suite::run_all(|name| {
        let client = client.clone();
        async move { Arc::new(S3Store::new(client, "store-suite", &format!("{name}/"))) as Arc<dyn Store> }
    })
    .await;
    let missing = S3Store::new(s3.clone(), "no-such-bucket-suite", "");
    assert!(matches!(missing.check_root().await, Err(Error::NoSuchBucket { .. })));

    // Above 64 MiB, put_file is a multipart upload; the object appears whole.
    let store = S3Store::new(s3, "store-suite", "big/");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big");
    let body: Vec<u8> = (0..(65u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &body).unwrap();
    store.put_file("object", &file).await.unwrap();
    let meta = store.head("object").await.unwrap().expect("exists");
    assert_eq!(meta.size, body.len() as u64);
    assert!(meta.etag.as_deref().is_some_and(|e| e.contains('-')), "multipart ETag: {:?}", meta.etag);
    let range =
        read_all(&store, "object", Some(ByteRange { start: 40 << 20, end: Some((40 << 20) + 7) }), None).await.unwrap();
    assert_eq!(&range[..], &body[40 << 20..(40 << 20) + 7]);
}

/// Reads the first block of a pinned read, lets `change` alter the file, then drains the rest.
async fn read_while_changing(
    range: Option<ByteRange>,
    change: impl FnOnce(&std::path::Path),
) -> batchfan::Result<usize> {
    use futures_util::TryStreamExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.txt");
    let body: Vec<u8> = (0..(1u32 << 20)).map(|i| if i % 64 == 63 { b'\n' } else { b'a' + (i % 26) as u8 }).collect();
    std::fs::write(&path, &body).unwrap();
    let store = LocalStore::new(Location::parse(&dir.path().display().to_string()).unwrap());
    let meta = store.head("input.txt").await.unwrap().expect("exists");
    let mut stream = store.get("input.txt", range, Some(&meta)).await?;
    let mut read = stream.try_next().await?.map_or(0, |b| b.len());
    assert!(read > 0 && read < body.len(), "the first block is a part of the file");
    // Timestamps are coarse (a kernel tick): let the change get a later mtime.
    std::thread::sleep(std::time::Duration::from_millis(20));
    change(&path);
    while let Some(bytes) = stream.try_next().await? {
        read += bytes.len();
    }
    Ok(read)
}

// Regression (issue 9): a local input changed while its child read it was committed with exit 0
// and wrong counts (13.9 M words instead of 55.9 M after a truncate mid-read).
#[tokio::test(flavor = "multi_thread")]
async fn a_local_input_changed_mid_read_fails_the_read() {
    use std::io::{Seek, SeekFrom, Write};
    let truncate =
        |p: &std::path::Path| std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(300_000).unwrap();
    let append = |p: &std::path::Path| {
        std::fs::OpenOptions::new().append(true).open(p).unwrap().write_all(b"more words\n").unwrap()
    };
    let overwrite = |p: &std::path::Path| {
        let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.seek(SeekFrom::Start(700_000)).unwrap();
        f.write_all(b"SAME SIZE, OTHER BYTES").unwrap();
    };
    type Change<'a> = &'a dyn Fn(&std::path::Path);
    let cases: [(&str, Change); 3] =
        [("truncate", &truncate), ("append", &append), ("same-size overwrite", &overwrite)];
    for (what, change) in cases {
        let err = read_while_changing(None, change).await.unwrap_err();
        assert!(matches!(err, Error::InputChanged { .. }), "{what}: {err}");
        assert!(err.to_string().contains("input.txt"), "{what}: {err}");
        // A split range's reader stops before the end of the file: it is pinned all the same.
        let range = Some(ByteRange { start: 0, end: Some(600_000) });
        let err = read_while_changing(range, change).await.unwrap_err();
        assert!(matches!(err, Error::InputChanged { .. }), "{what} in a range: {err}");
    }
    // Unchanged, the same reads succeed with exactly the planned bytes.
    assert_eq!(read_while_changing(None, |_| {}).await.unwrap(), 1 << 20);
    let range = Some(ByteRange { start: 0, end: Some(600_000) });
    assert_eq!(read_while_changing(range, |_| {}).await.unwrap(), 600_000);
}
