//! The job definitions worker-image/README.md shows (worker-image/jobdefs/*.json) register as
//! written, with `batchfan register --cli-input-json`, and keep what the README promises.

use batchfan_tests::{batch_client, command, moto, run};

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_fargate_and_spot_job_definitions_register_as_written() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../worker-image/jobdefs");
    let batch = batch_client(&moto.endpoint).await;
    for (file, platform) in [("fargate.json", "FARGATE"), ("ec2-spot.json", "EC2")] {
        let out = run(command("batchfan", Some(moto))
            .env("BATCHFAN_HOME", home.path())
            .args(["register", "--format", "json", "--cli-input-json"])
            .arg(dir.join(file)));
        assert_eq!(out.status.code(), Some(0), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        let name = doc["jobDefinitionName"].as_str().unwrap();
        let described = batch.describe_job_definitions().job_definition_name(name).send().await.unwrap();
        let def = described.job_definitions().first().unwrap_or_else(|| panic!("{file}: {name} registered"));
        assert_eq!(def.platform_capabilities().iter().map(|p| p.as_str()).collect::<Vec<_>>(), [platform]);
        let container = def.container_properties().unwrap();
        assert_eq!(container.command(), ["wordcount"], "{file}: the ENTRYPOINT is the worker");
        assert_eq!(container.readonly_root_filesystem(), Some(true), "{file}");
        assert_eq!(container.user(), Some("65534"), "{file}");
        assert_ne!(container.execution_role_arn(), container.job_role_arn(), "{file}: separate roles");
        assert!(container.image().unwrap().contains("@sha256:"), "{file}: pinned by digest");
        assert_eq!(container.secrets().len(), 2, "{file}");
        assert!(
            container.environment().iter().all(|e| e.name().is_some_and(|n| n.starts_with("BATCHFAN_"))),
            "{file}: no secret in the plain environment"
        );
        assert_eq!(container.log_configuration().unwrap().log_driver().map(|d| d.as_str()), Some("awslogs"), "{file}");
    }
}
