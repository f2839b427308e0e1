//! Two batchfan clients with different AWS configurations in one process, at once: each plans
//! an input in its own account (or region, or endpoint) and writes the manifest there. No
//! setting leaks from one client to the other, because nothing is process-global.
//!
//! ```text
//! ACCOUNT_A_KEY_ID=.. ACCOUNT_A_SECRET=.. ACCOUNT_B_KEY_ID=.. ACCOUNT_B_SECRET=.. \
//! cargo run -p batchfan-examples --bin two_accounts -- \
//!     REGION_A ENDPOINT_A|- s3://bucket-a/in/ REGION_B ENDPOINT_B|- s3://bucket-b/in/
//! ```
//! Prints one JSON line per account: its input, items, chunks, bytes and manifest.

use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use batchfan::{Client, Location, PlanOptions, manifest, run};

fn config(region: &str, endpoint: &str, account: &str) -> Result<SdkConfig, String> {
    let var = |name: String| std::env::var(&name).map_err(|_| format!("set {name}"));
    let credentials = Credentials::new(
        var(format!("ACCOUNT_{account}_KEY_ID"))?,
        var(format!("ACCOUNT_{account}_SECRET"))?,
        None,
        None,
        "two-accounts",
    );
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(SharedCredentialsProvider::new(credentials));
    if endpoint != "-" {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(builder.build())
}

/// Plans `input` with `client` and writes the manifest under the input's `_plans/` folder.
async fn plan_in(client: &Client, input: &str) -> batchfan::Result<serde_json::Value> {
    let input = Location::parse(input)?;
    let plan = client.plan(&input, &PlanOptions { children: Some(2), ..Default::default() }).await?;
    let run_id = run::new_run_id();
    let manifest = input.join_display(&format!("_plans/{run_id}.jsonl"));
    manifest::write_plan(client.stores(), &manifest, &plan, &run_id, &input.child("_out")).await?;
    Ok(serde_json::json!({
        "input": input.to_string(),
        "items": plan.items.len(),
        "chunks": plan.chunks.len(),
        "bytes": plan.total_bytes(),
        "manifest": manifest,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [region_a, endpoint_a, input_a, region_b, endpoint_b, input_b] = args.as_slice() else {
        eprintln!("usage: two_accounts REGION_A ENDPOINT_A|- INPUT_A REGION_B ENDPOINT_B|- INPUT_B");
        return ExitCode::from(2);
    };
    let configs = config(region_a, endpoint_a, "A").and_then(|a| Ok((a, config(region_b, endpoint_b, "B")?)));
    let (a, b) = match configs {
        Ok((a, b)) => (Client::new(&a), Client::new(&b)),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Both clients work at the same time.
    match tokio::try_join!(plan_in(&a, input_a), plan_in(&b, input_b)) {
        Ok((a, b)) => {
            println!("{a}\n{b}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }
    }
}
