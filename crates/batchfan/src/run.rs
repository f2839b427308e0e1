//! Preparing a run: plan, check the output, write the manifest. Shared by every executor.

use crate::error::Result;
use crate::layout;
use crate::manifest::{self, ManifestReader};
use crate::plan::{self, PlanOptions};
use crate::store;
use crate::uri::Location;

/// What to run: the input, how to pack it, where results go.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Input location.
    pub input: Location,
    /// Optional list file of keys under `input` (instead of listing it).
    pub input_list: Option<String>,
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

/// Checks everything, plans, and writes the manifest. Nothing is written when any input is bad:
/// options, locations, listing, the chunk limit and the output are all checked first.
pub async fn prepare_run(spec: &RunSpec) -> Result<PreparedRun> {
    spec.options.validate()?;
    let input = spec.input.absolute()?;
    let output = spec.output.absolute()?;
    let manifest_dir = match &spec.manifest {
        Some(uri) => Some(Location::parse_file(uri)?),
        None => None,
    };
    let plan = plan::plan(&input, spec.input_list.as_deref(), &spec.options).await?;
    let output_store = store::open(&output).await?;
    if output.is_s3() {
        output_store.check_root().await?;
    }
    layout::prepare_output(output_store.as_ref(), spec.overwrite).await?;
    let run_id = layout::new_run_id();
    let manifest_uri = match manifest_dir {
        Some((dir, name)) => dir.absolute()?.join_display(&name),
        None => output.join_display(&layout::manifest_key(&run_id)),
    };
    let encoded = manifest::encode(&plan, &run_id, &output)?;
    drop(plan); // children read the manifest; the plan's memory is not needed any more
    manifest::write(&manifest_uri, encoded).await?;
    let manifest = ManifestReader::open(&manifest_uri).await?;
    Ok(PreparedRun { run_id, manifest_uri, manifest })
}
