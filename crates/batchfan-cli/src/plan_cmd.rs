//! `batchfan plan`.

use std::process::ExitCode;

use batchfan::uri::Location;

use crate::cli::{Format, PlanArgs};
use crate::present;

pub async fn run(args: PlanArgs) -> batchfan::Result<ExitCode> {
    let options = args.plan.options();
    options.validate()?;
    let input = Location::parse(&args.plan.input)?.absolute()?;
    let plan = batchfan::plan::plan(&input, args.plan.input_list.as_deref(), &options).await?;
    match args.format {
        Format::Json => println!("{}", present::plan_json(&plan)),
        Format::Text => println!("{}", present::plan_text(&plan)),
    }
    Ok(ExitCode::SUCCESS)
}
