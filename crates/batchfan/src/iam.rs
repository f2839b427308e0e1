//! Least-privilege IAM policy documents for a fan-out's two roles: the job role (what the
//! worker's code does: read its inputs and manifest, write its outputs and markers, serve a
//! queue) and the execution role (what the agent does: pull the image, write logs, read the
//! named secrets). Every statement names its resources; no action or resource wildcard beyond
//! what AWS requires (`ecr:GetAuthorizationToken` takes only `*`).

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::uri::Location;

/// What the roles must reach.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    /// The input location (`s3://bucket/prefix/`).
    pub input: String,
    /// The output location.
    pub output: String,
    /// A manifest outside the output, if any.
    pub manifest: Option<String>,
    /// The SQS queue the workers serve, if any.
    pub queue_url: Option<String>,
    /// That queue's dead-letter queue (its URL or ARN): workers move a message that can never
    /// succeed (an input changed since planning, a missing manifest) there at once.
    pub dead_letter_queue: Option<String>,
    /// Secrets Manager or SSM parameter ARNs the definition's `secrets` name.
    pub secrets: Vec<String>,
    /// The image, when it is pulled from ECR (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG`).
    pub image: Option<String>,
    /// The awslogs group (default `/aws/batch/job`).
    pub log_group: Option<String>,
}

fn s3_parts(field: &str, uri: &str) -> Result<(String, String)> {
    match Location::parse(uri)? {
        Location::S3 { bucket, prefix } => Ok((bucket, prefix)),
        Location::Local { .. } => {
            Err(Error::option(field, uri, "an s3:// location (AWS roles reach S3, not local paths)"))
        }
    }
}

/// `arn:aws:sqs:REGION:ACCOUNT:NAME` of `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`.
pub fn queue_arn(url: &str) -> Result<String> {
    let bad = || Error::option("--queue-url", url, "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME");
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or_else(bad)?;
    let mut parts = rest.split('/');
    let host = parts.next().ok_or_else(bad)?;
    let (account, name) = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
    let region = host.strip_prefix("sqs.").and_then(|h| h.split('.').next()).ok_or_else(bad)?;
    if account.is_empty() || name.is_empty() {
        return Err(bad());
    }
    Ok(format!("arn:aws:sqs:{region}:{account}:{name}"))
}

fn list_statement(sid: &str, bucket: &str, prefix: &str) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": [format!("arn:aws:s3:::{bucket}")],
        "Condition": {"StringLike": {"s3:prefix": [format!("{prefix}*")]}}
    })
}

/// The job role's policy: inputs read (GetObject, ListBucket on the input prefix), outputs,
/// claim, markers and the manifest under the output (GetObject, PutObject,
/// AbortMultipartUpload, ListBucket on the output prefix: without it a missing marker reads as
/// 403, not 404), a manifest elsewhere, the queue's receive/delete/visibility/attributes.
pub fn job_role_policy(p: &PolicyInput) -> Result<Value> {
    let (in_bucket, in_prefix) = s3_parts("--input", &p.input)?;
    let (out_bucket, out_prefix) = s3_parts("--output", &p.output)?;
    let mut statements = vec![
        json!({"Sid": "ReadInput", "Effect": "Allow", "Action": ["s3:GetObject"],
               "Resource": [format!("arn:aws:s3:::{in_bucket}/{in_prefix}*")]}),
        list_statement("ListInput", &in_bucket, &in_prefix),
        json!({"Sid": "WriteOutput", "Effect": "Allow",
               "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
               "Resource": [format!("arn:aws:s3:::{out_bucket}/{out_prefix}*")]}),
        list_statement("ListOutput", &out_bucket, &out_prefix),
    ];
    if let Some(manifest) = &p.manifest {
        let (dir, name) = Location::parse_file(manifest)?;
        let (bucket, prefix) = s3_parts("--manifest", &dir.to_string())?;
        let key = format!("{prefix}{name}");
        if !(bucket == out_bucket && key.starts_with(&out_prefix)) {
            statements.push(json!({"Sid": "ReadManifest", "Effect": "Allow", "Action": ["s3:GetObject"],
                                   "Resource": [format!("arn:aws:s3:::{bucket}/{key}")]}));
        }
    }
    if let Some(url) = &p.queue_url {
        statements.push(json!({"Sid": "ServeQueue", "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
            "Resource": [queue_arn(url)?]}));
    }
    if let Some(dlq) = &p.dead_letter_queue {
        let arn = if dlq.starts_with("arn:aws:sqs:") { dlq.clone() } else { queue_arn(dlq)? };
        // The worker finds the dead-letter queue's URL from the redrive policy's ARN
        // (GetQueueUrl), then sends the message there.
        statements.push(json!({"Sid": "DeadLetter", "Effect": "Allow",
            "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"], "Resource": [arn]}));
    }
    Ok(json!({"Version": "2012-10-17", "Statement": statements}))
}

/// The execution role's policy: ECR pull of the image's repository (when it is an ECR image),
/// log streams of the log group, and exactly the named secrets.
pub fn execution_role_policy(p: &PolicyInput) -> Result<Value> {
    let mut statements = Vec::new();
    if let Some(image) = p.image.as_deref().filter(|i| i.contains(".dkr.ecr.")) {
        let bad = || Error::option("--image", image, "ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY[:TAG|@DIGEST]");
        let (host, path) = image.split_once('/').ok_or_else(bad)?;
        let account = host.split('.').next().ok_or_else(bad)?;
        let region = host.split('.').nth(3).ok_or_else(bad)?;
        let repo = path.split(['@', ':']).next().ok_or_else(bad)?;
        statements.push(
            json!({"Sid": "EcrToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]}),
        );
        statements.push(json!({"Sid": "EcrPull", "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            "Resource": [format!("arn:aws:ecr:{region}:{account}:repository/{repo}")]}));
    }
    let group = p.log_group.as_deref().unwrap_or("/aws/batch/job");
    statements.push(json!({"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [format!("arn:aws:logs:*:*:log-group:{group}:log-stream:*")]}));
    let (secrets, parameters): (Vec<&String>, Vec<&String>) =
        p.secrets.iter().partition(|a| a.starts_with("arn:aws:secretsmanager:"));
    if let Some(bad) = parameters.iter().find(|a| !a.starts_with("arn:aws:ssm:")) {
        return Err(Error::option(
            "--secrets",
            bad,
            "a Secrets Manager (arn:aws:secretsmanager:...) or SSM parameter (arn:aws:ssm:...) ARN",
        ));
    }
    if !secrets.is_empty() {
        statements.push(json!({"Sid": "Secrets", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": secrets}));
    }
    if !parameters.is_empty() {
        statements.push(
            json!({"Sid": "Parameters", "Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": parameters}),
        );
    }
    Ok(json!({"Version": "2012-10-17", "Statement": statements}))
}

/// The trust policy both roles take: ECS tasks (AWS Batch runs containers as ECS tasks).
pub fn trust_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
}

/// Both roles: `{job_role: {trust, policy}, execution_role: {trust, policy}}`.
pub fn documents(p: &PolicyInput) -> Result<Value> {
    Ok(json!({
        "job_role": {"trust": trust_policy(), "policy": job_role_policy(p)?},
        "execution_role": {"trust": trust_policy(), "policy": execution_role_policy(p)?},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PolicyInput {
        PolicyInput {
            input: "s3://in-bkt/logs/2026/".into(),
            output: "s3://out-bkt/counts/".into(),
            manifest: Some("s3://meta-bkt/m/run.jsonl".into()),
            queue_url: Some("https://sqs.eu-west-1.amazonaws.com/123456789012/work".into()),
            dead_letter_queue: Some("https://sqs.eu-west-1.amazonaws.com/123456789012/work-dlq".into()),
            secrets: vec![
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf".into(),
                "arn:aws:ssm:eu-west-1:123456789012:parameter/token".into(),
            ],
            image: Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/worker:1.2".into()),
            log_group: None,
        }
    }

    fn statements(doc: &Value) -> Vec<Value> {
        doc["Statement"].as_array().unwrap().clone()
    }

    #[test]
    fn the_job_role_reaches_exactly_its_prefixes_and_queue() {
        let doc = job_role_policy(&input()).unwrap();
        assert_eq!(doc["Version"], "2012-10-17");
        let s = statements(&doc);
        let by_sid = |sid: &str| s.iter().find(|x| x["Sid"] == sid).unwrap().clone();
        assert_eq!(by_sid("ReadInput")["Resource"], json!(["arn:aws:s3:::in-bkt/logs/2026/*"]));
        assert_eq!(by_sid("ReadInput")["Action"], json!(["s3:GetObject"]));
        assert_eq!(by_sid("ListInput")["Condition"]["StringLike"]["s3:prefix"], json!(["logs/2026/*"]));
        assert_eq!(by_sid("WriteOutput")["Resource"], json!(["arn:aws:s3:::out-bkt/counts/*"]));
        assert_eq!(by_sid("ReadManifest")["Resource"], json!(["arn:aws:s3:::meta-bkt/m/run.jsonl"]));
        assert_eq!(by_sid("ServeQueue")["Resource"], json!(["arn:aws:sqs:eu-west-1:123456789012:work"]));
        assert_eq!(by_sid("DeadLetter")["Resource"], json!(["arn:aws:sqs:eu-west-1:123456789012:work-dlq"]));
        assert_eq!(by_sid("DeadLetter")["Action"], json!(["sqs:GetQueueUrl", "sqs:SendMessage"]));
        let by_arn =
            PolicyInput { dead_letter_queue: Some("arn:aws:sqs:eu-west-1:123456789012:work-dlq".into()), ..input() };
        assert_eq!(job_role_policy(&by_arn).unwrap(), doc, "a URL and an ARN give the same document");
        // Nothing wider than needed: no wildcard actions, no bucket-wide object access, no
        // delete, and the input is never writable.
        for st in &s {
            for action in st["Action"].as_array().unwrap() {
                let a = action.as_str().unwrap();
                assert!(!a.contains('*') && !a.contains("Delete") || a == "sqs:DeleteMessage", "{a}");
            }
            for r in st["Resource"].as_array().unwrap() {
                let r = r.as_str().unwrap();
                assert!(r != "*" && !r.ends_with(":::in-bkt/*") && !r.ends_with(":::out-bkt/*"), "{r}");
            }
        }
        assert!(!by_sid("ReadInput")["Action"].to_string().contains("Put"));
    }

    #[test]
    fn the_execution_role_pulls_one_repository_and_reads_only_the_named_secrets() {
        let doc = execution_role_policy(&input()).unwrap();
        let s = statements(&doc);
        let by_sid = |sid: &str| s.iter().find(|x| x["Sid"] == sid).unwrap().clone();
        assert_eq!(by_sid("EcrPull")["Resource"], json!(["arn:aws:ecr:eu-west-1:123456789012:repository/worker"]));
        assert_eq!(
            by_sid("Secrets")["Resource"],
            json!(["arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"])
        );
        assert_eq!(by_sid("Parameters")["Resource"], json!(["arn:aws:ssm:eu-west-1:123456789012:parameter/token"]));
        assert_eq!(by_sid("Logs")["Resource"], json!(["arn:aws:logs:*:*:log-group:/aws/batch/job:log-stream:*"]));
        // Only GetAuthorizationToken takes `*` (AWS allows nothing narrower for it).
        for st in &s {
            if st["Resource"] == json!(["*"]) {
                assert_eq!(st["Action"], json!(["ecr:GetAuthorizationToken"]));
            }
        }
        let no_ecr = PolicyInput { image: Some("docker.io/library/busybox:1.36".into()), secrets: vec![], ..input() };
        let s = statements(&execution_role_policy(&no_ecr).unwrap());
        assert_eq!(s.len(), 1, "a public image and no secrets: logs only: {s:?}");
    }

    #[test]
    fn bad_inputs_are_named() {
        assert!(
            job_role_policy(&PolicyInput { input: "/tmp/in".into(), ..input() })
                .unwrap_err()
                .to_string()
                .contains("--input")
        );
        assert!(queue_arn("not a url").is_err());
        let bad = PolicyInput { secrets: vec!["arn:aws:s3:::x".into()], ..input() };
        assert!(execution_role_policy(&bad).unwrap_err().to_string().contains("--secrets"));
    }
}
