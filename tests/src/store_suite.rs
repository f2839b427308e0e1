//! The store suite: what every [`Store`] backend must do alike, one named function per
//! behaviour (object_store's `integration.rs` is the model). `tests/store_suite.rs` runs every
//! function over the local folder store, the S3 store on moto and the in-memory store.

use std::sync::Arc;

use batchfan::Error;
use batchfan::store::{ByteRange, ObjectMeta, Store, list_all, read_all};
use bytes::Bytes;

/// Every function of the suite, in order, on a store of its own each (made by `fresh`).
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    put_list_and_head(fresh("put-list").await).await;
    ranged_reads(fresh("ranged").await).await;
    pinned_reads_fail_once_the_object_changed(fresh("pinned").await).await;
    put_file_writes_and_returns_the_version_listings_give(fresh("put-file").await).await;
    put_if_absent_creates_once(fresh("put-if-absent").await).await;
    deletes_are_idempotent(fresh("deletes").await).await;
}

/// Puts, a recursive listing (with and without a prefix), head of present and missing keys.
pub async fn put_list_and_head(store: Arc<dyn Store>) {
    let name = store.location().to_string();
    store.check_root().await.unwrap();
    store.put("a/one.txt", Bytes::from_static(b"hello\nworld\n")).await.unwrap();
    store.put("a/b/two.txt", Bytes::from_static(b"")).await.unwrap();
    store.put("z.txt", Bytes::from_static(b"zzz")).await.unwrap();
    let mut listed = list_all(store.as_ref(), "").await.unwrap();
    listed.sort_by(|x, y| x.key.cmp(&y.key));
    let keys: Vec<_> = listed.iter().map(|o| (o.key.as_str(), o.size)).collect();
    assert_eq!(keys, vec![("a/b/two.txt", 0), ("a/one.txt", 12), ("z.txt", 3)], "{name}");
    let under: Vec<_> = list_all(store.as_ref(), "a/").await.unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(under.len(), 2, "{name}");
    let meta = store.head("a/one.txt").await.unwrap().expect("exists");
    assert_eq!(meta.size, 12, "{name}");
    assert!(meta.version().is_some(), "{name}: a version");
    assert_eq!(store.head("missing.txt").await.unwrap(), None, "{name}");
    let missing = read_all(store.as_ref(), "nope.txt", None, None).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{name}: {missing}");
}

/// Ranges: inside, to the end, and starting at the end (empty).
pub async fn ranged_reads(store: Arc<dyn Store>) {
    let name = store.location().to_string();
    store.put("a/one.txt", Bytes::from_static(b"hello\nworld\n")).await.unwrap();
    let meta = store.head("a/one.txt").await.unwrap().expect("exists");
    let whole = read_all(store.as_ref(), "a/one.txt", None, Some(&meta)).await.unwrap();
    assert_eq!(&whole[..], b"hello\nworld\n", "{name}");
    let range = read_all(store.as_ref(), "a/one.txt", Some(ByteRange { start: 6, end: Some(9) }), None).await.unwrap();
    assert_eq!(&range[..], b"wor", "{name}");
    let tail = read_all(store.as_ref(), "a/one.txt", Some(ByteRange { start: 6, end: None }), None).await.unwrap();
    assert_eq!(&tail[..], b"world\n", "{name}");
    let empty = read_all(store.as_ref(), "a/one.txt", Some(ByteRange { start: 12, end: None }), None).await.unwrap();
    assert!(empty.is_empty(), "{name}: a range starting at the end is empty");
}

/// A read pinned to a version fails with `InputChanged` naming the key once the object changed
/// or is gone (a worker exits 3 for it, not 2).
pub async fn pinned_reads_fail_once_the_object_changed(store: Arc<dyn Store>) {
    let name = store.location().to_string();
    store.put("a/one.txt", Bytes::from_static(b"hello\nworld\n")).await.unwrap();
    store.put("z.txt", Bytes::from_static(b"zzz")).await.unwrap();
    let meta = store.head("a/one.txt").await.unwrap().expect("exists");
    // Local versions are mtimes: let the change get a later one.
    std::thread::sleep(std::time::Duration::from_millis(10));
    store.put("a/one.txt", Bytes::from_static(b"changed content\n")).await.unwrap();
    let changed = read_all(store.as_ref(), "a/one.txt", None, Some(&meta)).await.unwrap_err();
    assert!(
        matches!(changed, Error::InputChanged { .. }) && changed.to_string().contains("a/one.txt"),
        "{name}: {changed}"
    );
    let stale = ObjectMeta { size: 16, ..meta.clone() };
    assert!(read_all(store.as_ref(), "a/one.txt", None, Some(&stale)).await.is_err(), "{name}");
    let z = store.head("z.txt").await.unwrap().expect("exists");
    store.delete("z.txt").await.unwrap();
    let gone = read_all(store.as_ref(), "z.txt", None, Some(&z)).await.unwrap_err();
    assert!(matches!(gone, Error::InputChanged { .. }), "{name}: {gone}");
}

/// `put_file` writes a file's bytes and returns the version a listing then shows (what a
/// completion marker records, so a later overwrite is seen).
pub async fn put_file_writes_and_returns_the_version_listings_give(store: Arc<dyn Store>) {
    let name = store.location().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"from a file").unwrap();
    let written = store.put_file("c/file.txt", &file).await.unwrap();
    assert_eq!((written.key.as_str(), written.size), ("c/file.txt", 11), "{name}");
    assert_eq!(&read_all(store.as_ref(), "c/file.txt", None, None).await.unwrap()[..], b"from a file", "{name}");
    let listed = list_all(store.as_ref(), "c/").await.unwrap();
    assert_eq!(listed.len(), 1, "{name}");
    assert!(written.version().is_some(), "{name}: put_file returns a version");
    assert_eq!(listed[0].version(), written.version(), "{name}: the listing shows the version put_file returned");
    std::thread::sleep(std::time::Duration::from_millis(10));
    std::fs::write(&file, b"other bytes").unwrap();
    let again = store.put_file("c/file.txt", &file).await.unwrap();
    assert_ne!(again.version(), written.version(), "{name}: another write is another version");
}

/// `put_if_absent` creates once: a second create of the key fails and leaves the first body
/// (the output claim rests on it), even when several race.
pub async fn put_if_absent_creates_once(store: Arc<dyn Store>) {
    let name = store.location().to_string();
    assert!(store.put_if_absent("claim.json", Bytes::from_static(b"first")).await.unwrap(), "{name}");
    assert!(!store.put_if_absent("claim.json", Bytes::from_static(b"second")).await.unwrap(), "{name}");
    assert_eq!(&read_all(store.as_ref(), "claim.json", None, None).await.unwrap()[..], b"first", "{name}");
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.put_if_absent("race.json", Bytes::from(format!("racer {i}"))).await })
        })
        .collect();
    let mut won = Vec::new();
    for (i, racer) in racers.into_iter().enumerate() {
        if racer.await.unwrap().unwrap() {
            won.push(i);
        }
    }
    assert_eq!(won.len(), 1, "{name}: exactly one of 8 racers creates the key: {won:?}");
    let body = read_all(store.as_ref(), "race.json", None, None).await.unwrap();
    assert_eq!(body, Bytes::from(format!("racer {}", won[0])), "{name}");
}

/// Deleting a missing object is fine, one by one and many at once.
pub async fn deletes_are_idempotent(store: Arc<dyn Store>) {
    let name = store.location().to_string();
    store.put("gone-twice", Bytes::from_static(b"x")).await.unwrap();
    store.delete("gone-twice").await.unwrap();
    store.delete("gone-twice").await.unwrap();
    assert_eq!(store.head("gone-twice").await.unwrap(), None, "{name}");
    store.put("many/1", Bytes::from_static(b"1")).await.unwrap();
    store.delete_many(&["many/1".into(), "many/never-there".into()]).await.unwrap();
    assert!(list_all(store.as_ref(), "many/").await.unwrap().is_empty(), "{name}");
}
