//! Preparing a run: plan, check every location, claim the output, write the manifest; and
//! what follows a start (clearing what earlier runs left) or takes it back. Shared by every
//! executor.

use crate::contract;
use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::{self, ManifestReader};
use crate::plan::{Plan, PlanOptions};
use crate::registry::StoreRegistry;
use crate::store::Store;
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

/// A run whose manifest is written and ready for children. Its output is claimed for it; what
/// earlier runs left there is deleted by [`clear_earlier`], the last step before the first
/// child starts.
#[derive(Debug, Clone)]
pub(crate) struct PreparedRun {
    /// The new run id.
    pub(crate) run_id: String,
    /// Where the manifest is.
    pub(crate) manifest_uri: String,
    /// The manifest, opened (its header holds the chunk table).
    pub(crate) manifest: ManifestReader,
    /// What earlier runs left in the output, to delete before the first child starts
    /// (`--overwrite`; empty otherwise).
    pub(crate) earlier: layout::Earlier,
}

/// A planned run: checked and planned, nothing written yet (what `--dry-run` shows).
#[derive(Debug, Clone)]
pub(crate) struct PlannedRun {
    /// The new run id.
    pub(crate) run_id: String,
    /// Where the manifest will be written.
    pub(crate) manifest_uri: String,
    /// The plan.
    pub(crate) plan: Plan,
    /// The output location (absolute).
    pub(crate) output: Location,
}

/// Checks everything and plans; writes nothing. Options, locations (the manifest's among
/// them), listing, the chunk limit and the output location are all checked here.
pub(crate) async fn plan_run(stores: &StoreRegistry, spec: &RunSpec) -> Result<PlannedRun> {
    spec.options.validate()?;
    let input = spec.input.absolute()?;
    let output = spec.output.absolute()?;
    let manifest_dir = match &spec.manifest {
        Some(uri) => Some(Location::parse_file(uri).map_err(|e| match e {
            Error::InvalidUri { uri, reason } => Error::option("--manifest", uri, reason),
            e => e,
        })?),
        None => None,
    };
    check_no_overlap(&input, &output)?;
    if let Location::Local { path } = &output {
        crate::preflight::local_folder("--output", path)?;
    }
    let plan = crate::incremental::plan(stores, &input, &spec.options).await?;
    let output_store = stores.store(&output)?;
    if output.is_s3() {
        output_store.check_root().await?;
    }
    if !spec.overwrite {
        layout::refuse_earlier(output_store.as_ref(), &layout::earlier_outputs(output_store.as_ref(), None).await?)?;
    }
    let run_id = layout::new_run_id();
    let manifest_uri = match manifest_dir {
        Some((dir, name)) => dir.absolute()?.join_display(&name),
        None => output.join_display(&contract::manifest_key(&run_id)),
    };
    crate::preflight::manifest(stores, &manifest_uri).await?;
    Ok(PlannedRun { run_id, manifest_uri, plan, output })
}

/// Claims the output for a planned run and writes its manifest: the claim first (under it no
/// other run can check, clear or write this output), then the output check again, then the
/// manifest, read back. Nothing is deleted here: with `overwrite`, what earlier runs left is in
/// [`PreparedRun::earlier`] for [`clear_earlier`]. A failure takes back what was written (the
/// manifest, the claim), so the same command can be run again.
pub(crate) async fn write_run(stores: &StoreRegistry, planned: PlannedRun, overwrite: bool) -> Result<PreparedRun> {
    // Temporary files of writers killed mid-write are invisible to listings: sweep them here.
    if let Location::Local { path } = &planned.output {
        crate::store::LocalStore::new(Location::Local { path: path.clone() }).sweep_stale_temps();
    }
    let output_store = stores.store(&planned.output)?;
    crate::claim::take(output_store.as_ref(), &planned.run_id).await?;
    let (run_id, manifest_uri) = (planned.run_id.clone(), planned.manifest_uri.clone());
    let mut wrote_manifest = false;
    let written = async {
        // Checked again under the claim: the check in `plan_run` raced with other runs.
        let mut earlier = layout::earlier_outputs(output_store.as_ref(), None).await?;
        if overwrite {
            earlier.read_markers(output_store.as_ref()).await?;
        } else {
            layout::refuse_earlier(output_store.as_ref(), &earlier)?;
        }
        manifest::write_plan_as(stores, &planned.manifest_uri, &planned.plan, &planned.run_id, &planned.output, true)
            .await
            .inspect(|()| wrote_manifest = true)?;
        drop(planned.plan); // children read the manifest; the plan's memory is not needed any more
        let manifest = ManifestReader::open(stores, &planned.manifest_uri).await?;
        Ok(PreparedRun { run_id: planned.run_id, manifest_uri: planned.manifest_uri, manifest, earlier })
    }
    .await;
    if written.is_err() {
        if wrote_manifest {
            let _ = delete_file(stores, &manifest_uri).await;
        }
        let _ = crate::claim::release(output_store.as_ref(), &run_id).await;
    }
    written
}

/// Deletes what earlier runs left in a prepared run's output (`--overwrite`: their completion
/// markers and exactly the objects those list, and batchfan-named `part-NNNNN` files; nothing
/// else) and aborts unfinished multipart uploads under it. The last step before the first
/// child starts: every check has passed and the manifest and run record are written.
pub(crate) async fn clear_earlier(stores: &StoreRegistry, prepared: &PreparedRun) -> Result<()> {
    let store = stores.store(&prepared.manifest.header().output_location()?)?;
    if !prepared.earlier.objects.is_empty() {
        store.delete_many(&prepared.earlier.objects).await?;
    }
    abort_uploads(store.as_ref()).await;
    Ok(())
}

/// Aborts unfinished multipart uploads under an output, best effort: a failure is logged, never
/// the run's (a bucket lifecycle rule is the fallback the README names).
pub(crate) async fn abort_uploads(store: &dyn Store) {
    match store.abort_uploads("").await {
        Ok(0) => {}
        Ok(n) => tracing::info!(aborted = n, output = %store.location(), "aborted unfinished multipart uploads"),
        Err(e) => {
            tracing::warn!(error = %e, output = %store.location(), "could not abort unfinished multipart uploads")
        }
    }
}

/// Takes back a prepared run that will not start (a later step failed before any child ran):
/// deletes its manifest and `written` (its run record, views) and releases its claim, so the
/// same command can be run again. Best effort: the first error is returned after every step was
/// tried.
pub(crate) async fn abandon(stores: &StoreRegistry, prepared: &PreparedRun, written: &[&str]) -> Result<()> {
    let mut first = Ok(());
    for uri in std::iter::once(prepared.manifest_uri.as_str()).chain(written.iter().copied()) {
        if let Err(e) = delete_file(stores, uri).await {
            first = first.and(Err(e));
        }
    }
    let released = async {
        let store = stores.store(&prepared.manifest.header().output_location()?)?;
        crate::claim::release(store.as_ref(), &prepared.run_id).await
    }
    .await;
    first.and(released)
}

async fn delete_file(stores: &StoreRegistry, uri: &str) -> Result<()> {
    let (dir, name) = Location::parse_file(uri)?;
    stores.store(&dir)?.delete(&name).await
}

/// Refuses an output that is the input, lies inside it, or holds it: the next plan would count
/// the outputs as data and `--overwrite` would delete inputs the plan just listed. Local paths
/// are compared as the file system resolves them, so a symlink cannot hide an overlap (the
/// error names the link).
pub(crate) fn check_no_overlap(input: &Location, output: &Location) -> Result<()> {
    if let (Location::Local { path: i }, Location::Local { path: o }) = (input, output) {
        let (ri, ro) = (resolved(i), resolved(o));
        if (ri != *i || ro != *o)
            && let Err(e) = overlap(&Location::Local { path: ri.clone() }, &Location::Local { path: ro.clone() })
        {
            let via = if ro != *o {
                format!("{} resolves to {}", o.display(), ro.display())
            } else {
                format!("{} resolves to {}", i.display(), ri.display())
            };
            return Err(Error::option("--output", output, format!("{} (through a symbolic link: {via})", allowed(&e))));
        }
    }
    overlap(input, output)
}

/// What an option error says is allowed.
fn allowed(e: &Error) -> String {
    match e {
        Error::InvalidOption { allowed, .. } => allowed.clone(),
        other => other.to_string(),
    }
}

/// `path` as the file system resolves it: its nearest existing ancestor canonicalized (links
/// followed), the rest appended.
fn resolved(path: &std::path::Path) -> std::path::PathBuf {
    let mut rest = Vec::new();
    let mut at = path.to_path_buf();
    loop {
        if let Ok(real) = std::fs::canonicalize(&at) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.file_name().map(|n| n.to_os_string()), at.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                at = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn overlap(input: &Location, output: &Location) -> Result<()> {
    let inside = input.relative(output).is_some();
    if inside || output.relative(input).is_some() {
        let how = if input.relative(output).as_deref() == Some("") {
            "is the input location"
        } else if inside {
            "lies inside the input location"
        } else {
            "holds the input location"
        };
        return Err(Error::option(
            "--output",
            output,
            format!(
                "a location apart from --input `{input}`: it {how}, so outputs would be planned as inputs next time and --overwrite would delete inputs; e.g. a sibling folder or prefix"
            ),
        ));
    }
    Ok(())
}
