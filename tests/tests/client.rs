//! `batchfan::Client` as a Rust pipeline embeds it: its own `SdkConfig`, several clients in one
//! process each talking to their own server, stores handed in by the caller, errors that keep
//! their cause, and S3 deletes in batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use batchfan::batch::ShortForm;
use batchfan::contract;
use batchfan::store::{LocalStore, S3Store, Store, list_all};
use batchfan::{Client, Error, LocalOptions, Location, PlanOptions, RunSpec};
use batchfan_tests::{command, create_bucket, moto, run, start_moto};
use bytes::Bytes;

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) {
    s3.put_object().bucket(bucket).key(key).body(body.as_bytes().to_vec().into()).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_in_one_process_each_talk_to_their_own_server() {
    let (one, two) = (moto(), start_moto(&[]));
    // The same bucket name on both servers, with different content.
    let (s3_one, s3_two) = (one.s3().await, two.s3().await);
    create_bucket(&s3_one, "same-name").await;
    create_bucket(&s3_two, "same-name").await;
    for i in 0..3 {
        put(&s3_one, "same-name", &format!("in/a{i}.txt"), "one\n").await;
    }
    for i in 0..5 {
        put(&s3_two, "same-name", &format!("in/b{i}.txt"), "two two\n").await;
    }
    let (a, b) = (one.client(), two.client());
    let input = Location::parse("s3://same-name/in/").unwrap();
    let options = PlanOptions::default();
    let (plan_a, plan_b) = tokio::try_join!(a.plan(&input, &options), b.plan(&input, &options)).unwrap();
    assert_eq!(plan_a.items.len(), 3);
    assert_eq!(plan_b.items.len(), 5);
    assert!(plan_a.items.iter().all(|i| i.key.starts_with('a')));
    assert!(plan_b.items.iter().all(|i| i.key.starts_with('b')));

    // Batch: requests, counters and the rate limiter are per client.
    let spec =
        ShortForm { name: "per-client".into(), image: "w:1".into(), vcpu: 1.0, memory: 512, ..Default::default() }
            .to_spec();
    let registered = a.register(&spec).await.unwrap();
    assert!(!registered.reused);
    assert!(a.batch_request_count() >= 2, "DescribeJobDefinitions + RegisterJobDefinition");
    assert_eq!(b.batch_request_count(), 0, "the other client sent nothing");
    // The second server never saw the definition: registering there makes its first revision.
    let on_two = b.register(&spec).await.unwrap();
    assert_eq!((on_two.reused, on_two.revision), (false, 1));

    // A clone is the same client (one counter, one limiter).
    let a2 = a.clone();
    let before = a.batch_request_count();
    assert!(a2.register(&spec).await.unwrap().reused);
    assert_eq!(a.batch_request_count(), before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_two_accounts_example_plans_with_two_configurations_at_once() {
    let (one, two) = (moto(), start_moto(&[]));
    create_bucket(&one.s3().await, "acct-a").await;
    create_bucket(&two.s3().await, "acct-b").await;
    for i in 0..4 {
        put(&one.s3().await, "acct-a", &format!("in/{i}.txt"), "alpha\n").await;
    }
    put(&two.s3().await, "acct-b", "in/only.txt", "beta beta\n").await;
    // No AWS_* variables: each client's configuration comes from the program, not the process.
    let mut cmd = command("two_accounts", None);
    cmd.env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs([
            ("ACCOUNT_A_KEY_ID", "a"),
            ("ACCOUNT_A_SECRET", "a"),
            ("ACCOUNT_B_KEY_ID", "b"),
            ("ACCOUNT_B_SECRET", "b"),
        ])
        .args(["us-east-1", &one.endpoint, "s3://acct-a/in/", "us-east-1", &two.endpoint, "s3://acct-b/in/"]);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!((lines[0]["items"].as_u64(), lines[1]["items"].as_u64()), (Some(4), Some(1)));
    assert_eq!(lines[1]["bytes"], 10);
    // Each manifest went to its own server.
    let manifest_a = lines[0]["manifest"].as_str().unwrap();
    let manifest_b = lines[1]["manifest"].as_str().unwrap();
    assert_eq!(one.client().open_manifest(manifest_a).await.unwrap().header().item_count, 4);
    assert_eq!(two.client().open_manifest(manifest_b).await.unwrap().header().item_count, 1);
    assert!(matches!(one.client().open_manifest(manifest_b).await, Err(Error::NoSuchBucket { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_handed_in_by_the_caller_serves_its_location_and_below() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data/sub")).unwrap();
    std::fs::write(dir.path().join("data/one.txt"), "a b c\n").unwrap();
    std::fs::write(dir.path().join("data/sub/two.txt"), "d e\n").unwrap();
    // `s3://virtual/` is served by a local folder: no S3 request is ever made (the client has
    // no endpoint or credentials at all).
    let root = Location::parse("s3://virtual/").unwrap();
    let local: Arc<dyn Store> = Arc::new(LocalStore::new(Location::parse(&dir.path().display().to_string()).unwrap()));
    let config = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
    let client = Client::builder(&config).with_store(root, local).build();
    let spec = RunSpec {
        input: Location::parse("s3://virtual/data/").unwrap(),
        options: PlanOptions::default(),
        output: Location::parse("s3://virtual/out/").unwrap(),
        manifest: None,
        overwrite: false,
    };
    let local = client.run_local(&spec, &LocalOptions::new("true", vec![]), &|_| {}, std::future::pending()).await;
    let run = local.unwrap().run;
    let record = run.record();
    assert_eq!(record.item_count, 2);
    assert!(record.manifest.starts_with("s3://virtual/out/_batchfan/runs/"), "{}", record.manifest);
    let manifest_file = dir.path().join("out").join(contract::manifest_key(run.id()));
    assert!(manifest_file.exists(), "the manifest landed in the caller's store");
    let items = client.open_manifest(&record.manifest).await.unwrap().chunk(0).await.unwrap();
    assert_eq!(items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["one.txt", "sub/two.txt"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_errors_keep_their_cause() {
    // Nothing listens on port 9: the SDK's connection error is the source of the storage error.
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(aws_sdk_s3::config::Credentials::new(
            "k", "s", None, None, "test",
        )))
        .build();
    let client =
        Client::builder(&config).retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1)).build();
    let store = client.store(&Location::parse("s3://nowhere/x/").unwrap()).unwrap();
    let err = store.head("k").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let source = std::error::Error::source(&err).expect("the SDK error is kept as the source");
    assert!(source.to_string().contains("dispatch") || source.to_string().contains("connect"), "{source}");
}

/// Counts `DeleteObjects` (POST `?delete`) and `DeleteObject` (DELETE) requests.
#[derive(Debug, Default)]
struct CountDeletes {
    batch: Arc<AtomicU64>,
    single: Arc<AtomicU64>,
}

impl Intercept for CountDeletes {
    fn name(&self) -> &'static str {
        "count-deletes"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let request = context.request();
        match request.method() {
            "POST" if request.uri().contains("delete") => self.batch.fetch_add(1, Ordering::SeqCst),
            "DELETE" => self.single.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
        Ok(())
    }
}

// Regression (issue 6): `--overwrite` deleted earlier outputs one request each, where
// DeleteObjects takes 1,000 keys.
#[tokio::test(flavor = "multi_thread")]
async fn overwrite_deletes_earlier_outputs_1000_keys_a_request() {
    use futures_util::StreamExt;
    let moto = moto();
    let plain = moto.s3().await;
    create_bucket(&plain, "overwrite-batches").await;
    let keys: Vec<String> =
        (0..1_001).map(contract::part_key).chain((0..3).map(|i| contract::marker_key("bf-old", i))).collect();
    futures_util::stream::iter(keys.iter())
        .for_each_concurrent(16, |key| {
            let plain = plain.clone();
            async move { put(&plain, "overwrite-batches", &format!("out/{key}"), "x").await }
        })
        .await;
    put(&plain, "overwrite-batches", "out/unrelated.txt", "kept").await;
    let counter = CountDeletes::default();
    let (batch, single) = (counter.batch.clone(), counter.single.clone());
    let config = plain.config().to_builder().interceptor(counter).build();
    let store = S3Store::new(aws_sdk_s3::Client::from_conf(config), "overwrite-batches", "out/");
    store.delete_many(&keys).await.unwrap();
    assert_eq!(batch.load(Ordering::SeqCst), 2, "1,004 keys are two DeleteObjects requests");
    assert_eq!(single.load(Ordering::SeqCst), 0, "no DeleteObject per key");
    let left: Vec<String> = list_all(&store, "").await.unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(left, ["unrelated.txt"]);
    store.put("gone-twice", Bytes::from_static(b"x")).await.unwrap();
    store.delete_many(&["gone-twice".into(), "never-there".into()]).await.unwrap();
    assert_eq!(store.head("gone-twice").await.unwrap(), None);
}
