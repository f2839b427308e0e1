//! `batchfan plan`.

use std::process::ExitCode;

use batchfan::Client;
use batchfan::uri::Location;

use crate::cli::{Format, PlanArgs};
use crate::present;

pub async fn run(client: &Client, args: PlanArgs) -> batchfan::Result<ExitCode> {
    let mut options = args.plan.resolve(client).await?;
    // A plan shows what a submit would do: past 10,000 chunks a run is several arrays.
    options.max_chunks = options.max_chunks.max(batchfan::batch::MAX_RUN_CHUNKS);
    options.validate()?;
    let input = Location::parse(&args.plan.input)?.absolute()?;
    let plan = client.plan(&input, &options).await?;
    match args.format {
        Format::Json => println!("{}", present::plan_json(&plan)),
        Format::Text => println!("{}", present::plan_text(&plan)),
    }
    Ok(ExitCode::SUCCESS)
}
