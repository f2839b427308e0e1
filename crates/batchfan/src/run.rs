//! Preparing a run: plan, check the output, write the manifest. Shared by every executor.

use crate::client::Client;
use crate::contract;
use crate::error::Result;
use crate::layout;
use crate::manifest::{self, ManifestReader};
use crate::plan::{self, Plan, PlanOptions};
use crate::uri::Location;

/// What to run: the input, how to pack it, where results go.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Input location.
    pub input: Location,
    /// Packing and filtering.
    pub options: PlanOptions,
    /// Output location.
    pub output: Location,
    /// Manifest URI; default `OUTPUT/_batchfan/runs/RUN/manifest.jsonl`.
    pub manifest: Option<String>,
    /// Delete earlier chunk outputs in `output` first (otherwise they are an error).
    pub overwrite: bool,
}

/// A run whose manifest is written and ready for children.
#[derive(Debug, Clone)]
pub struct PreparedRun {
    /// The new run id.
    pub run_id: String,
    /// Where the manifest is.
    pub manifest_uri: String,
    /// The manifest, opened (its header holds the chunk table).
    pub manifest: ManifestReader,
}

/// A planned run: checked and planned, nothing written yet (what `--dry-run` shows).
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// The new run id.
    pub run_id: String,
    /// Where the manifest will be written.
    pub manifest_uri: String,
    /// The plan.
    pub plan: Plan,
    /// The output location (absolute).
    pub output: Location,
}

/// Checks everything and plans; writes nothing. Options, locations, listing, the chunk limit and
/// the output location are all checked here.
pub async fn plan_run(client: &Client, spec: &RunSpec) -> Result<PlannedRun> {
    spec.options.validate()?;
    let input = spec.input.absolute()?;
    let output = spec.output.absolute()?;
    let manifest_dir = match &spec.manifest {
        Some(uri) => Some(Location::parse_file(uri)?),
        None => None,
    };
    check_no_overlap(&input, &output)?;
    let plan = plan::plan(client, &input, &spec.options).await?;
    let output_store = client.store(&output)?;
    if output.is_s3() {
        output_store.check_root().await?;
    }
    if !spec.overwrite {
        layout::prepare_output(output_store.as_ref(), false).await?;
    }
    let run_id = layout::new_run_id();
    let manifest_uri = match manifest_dir {
        Some((dir, name)) => dir.absolute()?.join_display(&name),
        None => output.join_display(&contract::manifest_key(&run_id)),
    };
    Ok(PlannedRun { run_id, manifest_uri, plan, output })
}

/// Writes a planned run's manifest (after clearing old outputs when `overwrite`).
pub async fn write_run(client: &Client, planned: PlannedRun, overwrite: bool) -> Result<PreparedRun> {
    // Temporary files of writers killed mid-write are invisible to listings: sweep them here.
    if let Location::Local { path } = &planned.output {
        crate::store::LocalStore::new(Location::Local { path: path.clone() }).sweep_stale_temps();
    }
    // The claim comes first: under it no other run can check, clear or write this output.
    let output_store = client.store(&planned.output)?;
    crate::claim::take(output_store.as_ref(), &planned.run_id).await?;
    let run_id = planned.run_id.clone();
    let written = async {
        // Checked again under the claim: the check in `plan_run` raced with other runs.
        layout::prepare_output(output_store.as_ref(), overwrite).await?;
        manifest::write_plan(client, &planned.manifest_uri, &planned.plan, &planned.run_id, &planned.output).await?;
        drop(planned.plan); // children read the manifest; the plan's memory is not needed any more
        let manifest = ManifestReader::open(client, &planned.manifest_uri).await?;
        Ok(PreparedRun { run_id: planned.run_id, manifest_uri: planned.manifest_uri, manifest })
    }
    .await;
    if written.is_err() {
        let _ = crate::claim::release(output_store.as_ref(), &run_id).await;
    }
    written
}

/// Checks everything, plans, and writes the manifest. Nothing is written when any input is bad.
pub async fn prepare_run(client: &Client, spec: &RunSpec) -> Result<PreparedRun> {
    let planned = plan_run(client, spec).await?;
    write_run(client, planned, spec.overwrite).await
}

/// Refuses an output that is the input, lies inside it, or holds it: the next plan would count
/// the outputs as data and `--overwrite` would delete inputs the plan just listed.
pub fn check_no_overlap(input: &Location, output: &Location) -> Result<()> {
    let inside = input.relative(output).is_some();
    if inside || output.relative(input).is_some() {
        let how = if input.relative(output).as_deref() == Some("") {
            "is the input location"
        } else if inside {
            "lies inside the input location"
        } else {
            "holds the input location"
        };
        return Err(crate::Error::option(
            "--output",
            output,
            format!(
                "a location apart from --input `{input}`: it {how}, so outputs would be planned as inputs next time and --overwrite would delete inputs; e.g. a sibling folder or prefix"
            ),
        ));
    }
    Ok(())
}

/// An earlier local run to resume, and the chunks it has left.
#[derive(Debug)]
pub struct Resumed {
    /// The run, its manifest opened; its output location is claimed for it again.
    pub prepared: PreparedRun,
    /// Chunks without a completion marker, in order.
    pub pending: Vec<u64>,
}

/// Finds the newest run in `spec.output` (by run id, which sorts by time), checks that planning
/// `spec` again gives the same plan (input, items, bytes, chunks), claims the output for it and
/// returns the chunks without a completion marker. Nothing is written but the claim.
pub async fn resume_run(client: &Client, spec: &RunSpec) -> Result<Resumed> {
    spec.options.validate()?;
    let input = spec.input.absolute()?;
    let output = spec.output.absolute()?;
    let store = client.store(&output)?;
    // The newest run in the output, found as `status OUTPUT` finds it; its record names the manifest.
    #[derive(serde::Deserialize)]
    struct Manifested {
        manifest: String,
    }
    let found = crate::runs::find_record(client, &output.to_string()).await.map_err(|e| match e {
        crate::Error::UnknownRun { .. } => crate::Error::option(
            "--resume",
            &output,
            format!("an output holding an earlier run ({e}); run without --resume"),
        ),
        other => other,
    })?;
    let (run_id, manifest_uri) = (found.run_id.clone(), found.parse::<Manifested>()?.manifest);
    let manifest = ManifestReader::open(client, &manifest_uri).await?;
    let header = manifest.header();
    let plan = plan::plan(client, &input, &spec.options).await?;
    let same = header.input_location()?.absolute()? == input
        && header.item_count == plan.items.len() as u64
        && header.total_bytes == plan.total_bytes()
        && header.chunk_count == plan.chunks.len() as u64;
    if !same {
        return Err(crate::Error::option(
            "--resume",
            &run_id,
            format!(
                "a run of the same plan: planning now gives {} items ({} bytes) in {} chunks, run {run_id} had {} items ({} bytes) in {} chunks; start a new run with --overwrite instead",
                plan.items.len(),
                plan.total_bytes(),
                plan.chunks.len(),
                header.item_count,
                header.total_bytes,
                header.chunk_count
            ),
        ));
    }
    crate::claim::take(store.as_ref(), &run_id).await?;
    let committed = crate::status::committed_chunks(client, &run_id, &output.to_string()).await?;
    let pending = (0..header.chunk_count).filter(|i| !committed.contains(i)).collect();
    Ok(Resumed { prepared: PreparedRun { run_id, manifest_uri, manifest }, pending })
}
